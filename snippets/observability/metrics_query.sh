# Responses by status code, then requests by route template (health checks and scrapes left out)
promtool query instant http://127.0.0.1:9090 'sort_desc(sum by (status) (http_responses_total{route!~"/health|/metrics"}))'
promtool query instant http://127.0.0.1:9090 'sort_desc(sum by (route) (http_request_duration_seconds_count{route!~"/health|/metrics"}))'
