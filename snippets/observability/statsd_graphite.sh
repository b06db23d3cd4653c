# From the repository root: carbon, graphite-web and the StatsD daemon, each in its own terminal.
# carbon-cache (Debian graphite-carbon) with the placeholders filled in:
mkdir -p /tmp/recipe-graphite/storage/whisper /tmp/recipe-graphite/log
cp snippets/observability/storage-schemas.conf /tmp/recipe-graphite/
sed -e 's|__DIR__|/tmp/recipe-graphite|' -e 's/__LINE_PORT__/2003/' -e 's/__PICKLE_PORT__/2004/' -e 's/__QUERY_PORT__/7002/' snippets/observability/carbon.conf > /tmp/recipe-graphite/carbon.conf
carbon-cache --config=/tmp/recipe-graphite/carbon.conf --nodaemon --logfile=- start
# graphite-web (Debian graphite-web): create its small database once, then serve port 8080
# with Django's development server:
GRAPHITE_DIR=/tmp/recipe-graphite CARBON_QUERY_PORT=7002 GRAPHITE_SECRET_KEY=change-me GRAPHITE_SETTINGS_MODULE=graphite_settings PYTHONPATH=snippets/observability DJANGO_SETTINGS_MODULE=graphite.settings /usr/bin/python3 -m django migrate --run-syncdb --verbosity 0
GRAPHITE_DIR=/tmp/recipe-graphite CARBON_QUERY_PORT=7002 GRAPHITE_SECRET_KEY=change-me GRAPHITE_SETTINGS_MODULE=graphite_settings PYTHONPATH=snippets/observability DJANGO_SETTINGS_MODULE=graphite.settings /usr/bin/python3 -m django runserver --noreload 127.0.0.1:8080
# The StatsD daemon (npm statsd, pinned in package.json), flushing every 10 s:
npm ci --omit=optional --no-audit --no-fund
STATSD_PORT=8125 STATSD_ADMIN_PORT=8126 CARBON_PORT=2003 STATSD_FLUSH_MS=10000 node node_modules/statsd/stats.js snippets/observability/statsd_config.js
