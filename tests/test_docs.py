"""The pages and the files they show agree.

- Every inline Python block on a page runs, and its `#>` output lines match.
- Every file under examples/ and snippets/ is shown by some page.
- Every include on a page names a file and a section that exist.
- Every example program is exercised by some test.
- Every `python examples/...` command on a page is the example's own run line.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from kit.process import ROOT
from kit.snippets import run_line
from pytest_examples import CodeExample, EvalExample, find_examples

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
INCLUDE = re.compile(r'--8<--\s+"([^"]+)"')
SHOWN_DIRS = ("examples", "snippets")
IGNORED_PARTS = {"__pycache__", "node_modules"}


def inline_examples() -> list[CodeExample]:
    return [
        example
        for example in find_examples(str(DOCS))
        if (example.prefix.split() or [""])[0] in {"py", "python"}
        and "--8<--" not in example.source
    ]


@pytest.mark.parametrize("example", inline_examples(), ids=str)
def test_inline_python_blocks_run_and_print_what_the_page_shows(
    example: CodeExample, eval_example: EvalExample
) -> None:
    eval_example.set_config(line_length=100, target_version="py311")
    if eval_example.update_examples:
        eval_example.run_print_update(example)
    else:
        eval_example.run_print_check(example)


def includes() -> list[tuple[Path, str]]:
    found = []
    for page in PAGES:
        for target in INCLUDE.findall(page.read_text()):
            found.append((page, target))
    return found


def shown_files() -> list[Path]:
    """The files of SHOWN_DIRS that belong to the project: tracked, or new and not
    ignored by git (caches, generated stubs, a reader's secrets.env are not)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", *SHOWN_DIRS],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    files = []
    for name in sorted(set(filter(None, listed.split("\0")))):
        path = ROOT / name
        if path.is_file() and not IGNORED_PARTS & set(path.parts):
            files.append(path)
    return files


def test_every_include_names_an_existing_file_and_section() -> None:
    problems = []
    for page, target in includes():
        name, _, section = target.partition(":")
        path = ROOT / name
        if not path.is_file():
            problems.append(f"{page.relative_to(ROOT)}: {name} does not exist")
            continue
        if section and not section.isdigit():
            text = path.read_text()
            for marker in (f"[start:{section}]", f"[end:{section}]"):
                if marker not in text:
                    problems.append(f"{page.relative_to(ROOT)}: {name} has no {marker}")
    assert not problems, "\n".join(problems)


def test_every_example_and_snippet_file_is_shown_by_a_page() -> None:
    shown = {target.partition(":")[0] for _, target in includes()}
    orphans = [
        str(p.relative_to(ROOT)) for p in shown_files() if str(p.relative_to(ROOT)) not in shown
    ]
    assert not orphans, f"files no page shows (include them or delete them): {orphans}"


def test_every_example_program_is_exercised_by_a_test() -> None:
    tests_text = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    untested = [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "examples").rglob("*.py"))
        if not p.name.endswith(("_pb2.py", "_pb2_grpc.py"))
        and str(p.relative_to(ROOT / "examples")) not in tests_text
    ]
    assert not untested, f"examples no test names: {untested}"


def test_run_commands_on_pages_are_the_examples_own_run_lines() -> None:
    command = re.compile(r"^(?:[A-Z_]+=\S+ )*python examples/(\S+\.py)\b.*$", re.MULTILINE)
    problems = []
    seen = 0
    for page in PAGES:
        for match in command.finditer(page.read_text()):
            seen += 1
            line, example = match.group(0).strip(), match.group(1)
            if not (ROOT / "examples" / example).is_file():
                problems.append(f"{page.relative_to(ROOT)}: {example} does not exist")
            elif line != run_line(example):
                problems.append(
                    f"{page.relative_to(ROOT)}: {line!r} differs from the docstring's "
                    f"{run_line(example)!r}"
                )
    assert seen, "no page shows how to run an example"
    assert not problems, "\n".join(problems)


def test_shell_blocks_hold_only_tested_commands() -> None:
    """A command a reader copies is an included script that a test runs, an example's
    run line (checked above), or the project's own `./nox` command."""
    block = re.compile(r"^( *)```(?:bash|sh|shell|console)[^\n]*\n(.*?)^\1```", re.M | re.S)
    allowed = re.compile(r"^(?:(?:[A-Z_]+=\S+ )*python examples/\S+\.py\b.*|\./nox(?: .*)?)$")
    problems = []
    for page in PAGES:
        for match in block.finditer(page.read_text()):
            for line in match.group(2).splitlines():
                line = line.strip()
                if line and not line.startswith("--8<--") and not allowed.match(line):
                    problems.append(f"{page.relative_to(ROOT)}: {line!r}")
    assert not problems, "untested shell commands on pages:\n" + "\n".join(problems)
