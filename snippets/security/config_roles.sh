# As a superuser ($ADMIN_URL): the roles, the database and the grants. Stops at the first error.
psql "$ADMIN_URL" --no-psqlrc --quiet --set ON_ERROR_STOP=1 --file snippets/security/config_roles.sql
