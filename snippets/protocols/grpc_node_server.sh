# recipe.v1.RecipeService served by Node.js, in place of grpc_producer.py on its port.
PORT=4003 node snippets/protocols/grpc_node.js server
