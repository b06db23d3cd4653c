"""Fixtures for the protocols chapter's tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from harness import ROOT

GRPC_CODEGEN = ROOT / "snippets" / "protocols" / "grpc_codegen.sh"
GRPC_EXAMPLES = ROOT / "examples" / "protocols"


@pytest.fixture(scope="session")
def grpc_stubs() -> SimpleNamespace:
    """Generate the gRPC stubs with the page's own script, once, and import them.

    The script runs exactly as a reader runs it (`sh`, from the repository
    root), with this interpreter's `python` first on PATH. Returns the two
    generated modules as `.pb2` (messages) and `.pb2_grpc` (stub, servicer).
    """
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["sh", str(GRPC_CODEGEN.relative_to(ROOT))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"{GRPC_CODEGEN.name} failed:\n{result.stdout}{result.stderr}"
    if str(GRPC_EXAMPLES) not in sys.path:
        sys.path.append(str(GRPC_EXAMPLES))  # the stubs import each other as siblings
    import recipe_pb2
    import recipe_pb2_grpc

    modules: dict[str, ModuleType] = {"pb2": recipe_pb2, "pb2_grpc": recipe_pb2_grpc}
    return SimpleNamespace(**modules, codegen_output=result.stdout + result.stderr)
