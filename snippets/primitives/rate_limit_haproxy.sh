# From the repository root (-db: in the foreground, Ctrl-C stops it)
haproxy -db -f snippets/primitives/rate_limit_haproxy.cfg
