# From the repository root (-db: in the foreground, Ctrl-C stops it)
haproxy -db -f snippets/resilience/deadline_haproxy.cfg
