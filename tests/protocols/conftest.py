"""Fixtures for the protocols chapter's tests."""

from __future__ import annotations

import sys
from types import ModuleType, SimpleNamespace

import pytest
from kit import grpc_stubs as stubs


@pytest.fixture(scope="session")
def grpc_stubs() -> SimpleNamespace:
    """Generate the gRPC stubs with the page's own script, once, and import them.

    Returns the two generated modules as `.pb2` (messages) and `.pb2_grpc` (stub,
    servicer), and what the script printed as `.codegen_output`.
    """
    output = stubs.generate()
    if str(stubs.EXAMPLES) not in sys.path:
        sys.path.append(str(stubs.EXAMPLES))  # the stubs import each other as siblings
    import recipe_pb2
    import recipe_pb2_grpc

    modules: dict[str, ModuleType] = {"pb2": recipe_pb2, "pb2_grpc": recipe_pb2_grpc}
    return SimpleNamespace(**modules, codegen_output=output)
