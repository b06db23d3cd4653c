haproxy -db -f snippets/security/edge_haproxy.cfg
