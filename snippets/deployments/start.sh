# From the repository root: start production's current release with its own settings.
cd deploy/production/current
set -a && . ./release.env && set +a
exec bin/recipe-api
