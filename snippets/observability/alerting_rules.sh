# From the repository root: check the rules, then run their unit tests.
promtool check rules snippets/observability/alert_rules.yml
promtool test rules snippets/observability/alert_rules_test.yml
