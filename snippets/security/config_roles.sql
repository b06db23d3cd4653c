-- Run once per database, as a superuser (or a role with CREATEROLE and CREATEDB).
-- Two roles: one owns the schema and runs the migrations, the other is what the
-- service logs in as, and may only read and write rows. Neither is a superuser.
-- Passwords are set apart, from their files (never written in a script in git).
CREATE ROLE notes_owner LOGIN;
CREATE ROLE notes_app LOGIN;
CREATE DATABASE notes OWNER notes_owner;

\connect notes
-- Nobody but the owner creates anything here (PostgreSQL 15 already denies CREATE
-- on the public schema to PUBLIC; older versions allow it).
REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON DATABASE notes FROM PUBLIC;
GRANT CONNECT ON DATABASE notes TO notes_app;

CREATE SCHEMA notes AUTHORIZATION notes_owner;
GRANT USAGE ON SCHEMA notes TO notes_app;  -- may look inside, not CREATE
-- Every table and sequence the owner's migrations create from now on: rows only.
ALTER DEFAULT PRIVILEGES FOR ROLE notes_owner IN SCHEMA notes
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO notes_app;
ALTER DEFAULT PRIVILEGES FOR ROLE notes_owner IN SCHEMA notes
    GRANT USAGE, SELECT ON SEQUENCES TO notes_app;
