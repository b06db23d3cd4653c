# From the repository root. First fill in the placeholders and check both files:
mkdir -p /tmp/recipe-alerts
sed -e 's/__ALERTMANAGER__/127.0.0.1:9093/' -e 's/__METRICS__/127.0.0.1:4000/' -e 's/__HEALTH__/127.0.0.1:4001/' -e 's/__BLACKBOX__/127.0.0.1:9115/' snippets/observability/prometheus_alerting.yml > /tmp/recipe-alerts/prometheus.yml
cp snippets/observability/alert_rules.yml /tmp/recipe-alerts/
sed -e 's/__RECEIVER__/127.0.0.1:5001/' snippets/observability/alertmanager.yml > /tmp/recipe-alerts/alertmanager.yml
promtool check config /tmp/recipe-alerts/prometheus.yml
amtool check-config /tmp/recipe-alerts/alertmanager.yml
# Then each of these in its own terminal (they run in the foreground):
prometheus-blackbox-exporter --config.file=snippets/observability/blackbox.yml --web.listen-address=127.0.0.1:9115
prometheus-alertmanager --config.file=/tmp/recipe-alerts/alertmanager.yml --storage.path=/tmp/recipe-alerts/am --web.listen-address=127.0.0.1:9093 --cluster.listen-address=
prometheus --config.file=/tmp/recipe-alerts/prometheus.yml --storage.tsdb.path=/tmp/recipe-alerts/data --web.listen-address=127.0.0.1:9090
