# Scan again with the baseline's own settings (its plugins and exclusions) and rewrite it.
# Every finding it adds is one question for `detect-secrets audit .secrets.baseline`.
detect-secrets scan --baseline .secrets.baseline
