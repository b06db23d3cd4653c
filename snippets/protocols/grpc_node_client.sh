# Call the Python recipe-api (grpc_producer.py, listening on 4003) from Node.js.
node snippets/protocols/grpc_node.js client 127.0.0.1:4003
