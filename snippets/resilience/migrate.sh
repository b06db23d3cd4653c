# yoyo speaks psycopg 3 under the scheme postgresql+psycopg://
export YOYO_DATABASE="${DATABASE_URL/#postgresql:/postgresql+psycopg:}"
# --8<-- [start:apply]
yoyo apply --batch --no-config-file --database "$YOYO_DATABASE" examples/resilience/migrations
# --8<-- [end:apply]
# --8<-- [start:list]
yoyo list --batch --no-config-file --database "$YOYO_DATABASE" examples/resilience/migrations
# --8<-- [end:list]
# --8<-- [start:rollback]
yoyo rollback --batch --no-config-file --database "$YOYO_DATABASE" examples/resilience/migrations
# --8<-- [end:rollback]
yoyo list --batch --no-config-file --database "$YOYO_DATABASE" examples/resilience/migrations
