# From the repository root (-n: in the foreground, Ctrl-C stops it)
mkdir -p /tmp/recipe-logs
COLLECTOR_PORT=5140 COLLECTOR_FILE=/tmp/recipe-logs/collected.jsonl COLLECTOR_DIR=/tmp/recipe-logs rsyslogd -n -f snippets/observability/rsyslog.conf -i /tmp/recipe-logs/rsyslogd.pid
