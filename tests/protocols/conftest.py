"""Fixtures for the protocols chapter's tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from kit import sysdeps
from kit.process import ROOT

GRPC_CODEGEN = ROOT / "snippets" / "protocols" / "grpc_codegen.sh"
GRPC_EXAMPLES = ROOT / "examples" / "protocols"
GENERATED = ("recipe_pb2.py", "recipe_pb2.pyi", "recipe_pb2_grpc.py")


@pytest.fixture(scope="session")
def grpc_stubs() -> SimpleNamespace:
    """Generate the gRPC stubs with the page's own script, once, and import them.

    The script runs as a reader runs it (`sh`, from the root of a copy of the
    repository's layout), with this interpreter's `python` first on PATH. Returns the two
    generated modules as `.pb2` (messages) and `.pb2_grpc` (stub, servicer).
    """
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    # Parallel test workers each run this fixture while others may be importing the
    # stubs: generate in a copy of the repository layout, then move each file into
    # place atomically (os.replace), so no process ever reads a half-written stub.
    with tempfile.TemporaryDirectory(prefix="grpc-codegen-") as tmp:
        copy = Path(tmp) / GRPC_EXAMPLES.relative_to(ROOT)
        copy.mkdir(parents=True)
        shutil.copy(GRPC_EXAMPLES / "recipe.proto", copy / "recipe.proto")
        result = subprocess.run(
            ["sh", str(GRPC_CODEGEN)],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert result.returncode == 0, (
            f"{GRPC_CODEGEN.name} failed:\n{result.stdout}{result.stderr}"
        )
        with sysdeps.machine_lock("grpc-codegen"):
            for name in GENERATED:
                staged = GRPC_EXAMPLES / f".{name}.{os.getpid()}"
                shutil.copyfile(copy / name, staged)
                os.replace(staged, GRPC_EXAMPLES / name)
    if str(GRPC_EXAMPLES) not in sys.path:
        sys.path.append(str(GRPC_EXAMPLES))  # the stubs import each other as siblings
    import recipe_pb2
    import recipe_pb2_grpc

    modules: dict[str, ModuleType] = {"pb2": recipe_pb2, "pb2_grpc": recipe_pb2_grpc}
    return SimpleNamespace(**modules, codegen_output=result.stdout + result.stderr)
