"""The gRPC stubs of examples/protocols/recipe.proto, made by the page's own script.

Tests and benchmarks both need them, and parallel test workers import them while
another process may regenerate them: the script runs in a copy of the repository's
layout, and each file is then moved into place atomically (os.replace) under a
machine-wide lock, so no process ever reads a half-written stub.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from kit import sysdeps
from kit.process import ROOT
from kit.snippets import run_script

CODEGEN = "snippets/protocols/grpc_codegen.sh"
EXAMPLES = ROOT / "examples" / "protocols"
GENERATED = ("recipe_pb2.py", "recipe_pb2.pyi", "recipe_pb2_grpc.py")


def generate() -> str:
    """Run grpc_codegen.sh as a reader runs it (from the root, this interpreter's python
    first on PATH) and put the stubs beside the .proto. Returns the script's output."""
    with tempfile.TemporaryDirectory(prefix="grpc-codegen-") as tmp:
        copy = Path(tmp) / EXAMPLES.relative_to(ROOT)
        copy.mkdir(parents=True)
        shutil.copy(EXAMPLES / "recipe.proto", copy / "recipe.proto")
        result = run_script(CODEGEN, cwd=Path(tmp), timeout=120)
        with sysdeps.machine_lock("grpc-codegen"):
            for name in GENERATED:
                staged = EXAMPLES / f".{name}.{os.getpid()}"
                shutil.copyfile(copy / name, staged)
                os.replace(staged, EXAMPLES / name)
    return result.stdout + result.stderr
