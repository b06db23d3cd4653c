# Three recipe-api processes, on the ports haproxy_lb.cfg expects; Ctrl-C stops them all
for port in ${BACKEND1_PORT:-4001} ${BACKEND2_PORT:-4002} ${BACKEND3_PORT:-4003}; do
  PORT=$port python examples/why_distributed/recipe_api.py &
done
wait
