# In another terminal: production settings, logs also shipped to the collector
APP_ENV=production LOG_UDP=127.0.0.1:5140 python examples/observability/logging_service.py
