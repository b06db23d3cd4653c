# From snippets/containers: check the file before anything starts.
POSTGRES_PASSWORD=unused docker-compose config --quiet  # variables resolve, the file parses
check-jsonschema --builtin-schema vendor.compose-spec compose.yaml  # the compose-spec schema
