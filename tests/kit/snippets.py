"""The one parser of the command lines a page gives readers.

A reader copies two kinds of line: an example's run line from its docstring
(`TARGET=http://127.0.0.1:4000 python examples/why_distributed/web_api.py`) and
the lines of a `snippets/**/*.sh` script. Tests run exactly those lines, so they
read them here and nowhere else.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from kit.process import ROOT

EXAMPLES = ROOT / "examples"
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def split(line: str) -> tuple[dict[str, str], list[str]]:
    """`VAR=value program --flag=x 'a b'` -> ({"VAR": "value"}, ["program", "--flag=x", "a b"]).

    Only leading words shaped like `NAME=...` are variables; shell quoting is honoured.
    """
    words = shlex.split(line)
    env: dict[str, str] = {}
    while words and _ASSIGNMENT.match(words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if not words:
        raise ValueError(f"no command in {line!r}")
    return env, words


def commands(script: str | Path) -> list[str]:
    """The command lines of a snippets script (comments and blank lines dropped).

    `script` is a path relative to the repository root or absolute.
    """
    path = Path(script)
    text = (path if path.is_absolute() else ROOT / path).read_text()
    return [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def command(script: str | Path) -> tuple[dict[str, str], list[str]]:
    """The single command of a one-line script, split."""
    lines = commands(script)
    if len(lines) != 1:
        raise ValueError(f"{script} should hold one command, it holds {len(lines)}: {lines}")
    return split(lines[0])


def docstring(example: str) -> str:
    return ast.get_docstring(ast.parse((EXAMPLES / example).read_text())) or ""


def run_line(example: str) -> str:
    """The command line an example's docstring gives the reader, after "Run it...".

    `example` is relative to examples/, e.g. "why_distributed/web_api.py".
    """
    lines = docstring(example).splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("Run it"):
            for candidate in lines[i + 1 :]:
                if f"python examples/{example}" in candidate:
                    return candidate.strip()
    raise AssertionError(
        f"examples/{example} has no 'Run it:' line naming python examples/{example}"
    )


def install_line(example: str) -> list[str]:
    """The requirements of a `pip install ...` line in the docstring (an example that
    needs a package the shared examples group leaves out), or []."""
    for line in docstring(example).splitlines():
        if line.strip().startswith("pip install "):
            return split(line)[1][2:]
    return []


def example_command(example: str) -> tuple[dict[str, str], list[str]]:
    """The run line split, with `python` replaced by this interpreter."""
    env, argv = split(run_line(example))
    if argv[0] != "python":
        raise AssertionError(f"the run line of {example} must start with python: {argv}")
    return env, [sys.executable, *argv[1:]]


def run_script(
    script: str | Path,
    env: dict[str, str] | None = None,
    *,
    cwd: Path = ROOT,
    timeout: float = 60,
    returncode: int = 0,
) -> subprocess.CompletedProcess[str]:
    """Run a snippets/**/*.sh script with bash, as a reader runs it from `cwd`.

    This interpreter's directory comes first on PATH, so a `python` in the script is
    the one the tests run with. It must exit with `returncode`; its output is returned.
    """
    path = Path(script)
    path = path if path.is_absolute() else ROOT / path
    bin_dir = Path(sys.executable).parent
    child_env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    result = subprocess.run(
        ["bash", str(path)],
        cwd=cwd,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == returncode, (
        f"{path.name} exited with {result.returncode}:\n{result.stdout}{result.stderr}"
    )
    return result
