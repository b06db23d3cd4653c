# From the repository root, on a machine with Docker (the password is yours to choose)
GRAFANA_ADMIN_PASSWORD=change-me docker compose -f snippets/observability/compose.yaml up --detach
