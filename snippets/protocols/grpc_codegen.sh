# Generate the Python code for recipe.proto; run from the repository root.
# Writes recipe_pb2.py (messages), recipe_pb2.pyi (their types, for editors
# and type checkers) and recipe_pb2_grpc.py (client stub and server base class)
# beside the .proto. They are not committed: rerun after each change to it.
python -m grpc_tools.protoc -I examples/protocols \
    --python_out=examples/protocols --pyi_out=examples/protocols \
    --grpc_python_out=examples/protocols examples/protocols/recipe.proto
