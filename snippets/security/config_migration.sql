-- A migration, run as notes_owner: the table is the owner's, and the default
-- privileges of config_roles.sql give notes_app its rows at once.
CREATE TABLE notes.notes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body text NOT NULL
);
