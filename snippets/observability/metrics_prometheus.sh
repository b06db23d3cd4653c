# From the repository root: fill in the placeholders, then run Prometheus in the foreground
mkdir -p /tmp/recipe-prom
sed -e 's/__TARGET__/127.0.0.1:4000/' -e 's/__INTERVAL__/5s/' snippets/observability/prometheus.yml > /tmp/recipe-prom/prometheus.yml
promtool check config /tmp/recipe-prom/prometheus.yml
prometheus --config.file=/tmp/recipe-prom/prometheus.yml --storage.tsdb.path=/tmp/recipe-prom/data --web.listen-address=127.0.0.1:9090
