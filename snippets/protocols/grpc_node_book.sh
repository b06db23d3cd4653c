# The same client with the Node.js book's contract (package recipe): UNIMPLEMENTED.
PROTO=snippets/protocols/grpc_book_recipe.proto PACKAGE=recipe node snippets/protocols/grpc_node.js client 127.0.0.1:4003
