"""Wrangling repositories (docs/security/repositories.md).

What never goes in git is kept out by the project's own .gitignore; a secret
scanner (detect-secrets) runs as the pre-commit hook runs it, against the
committed baseline. The lint session runs it over the real tree (too slow for this
module: about 10 s of CPU); here, a fake key planted in a scratch repository fails
the same script with its file named, and a clean one passes.
pre-commit itself is not run: it downloads the hook's repository from GitHub,
which these machines cannot reach. The test runs the command the hook runs.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from kit.examples import assert_output_is_shown
from kit.process import ROOT
from kit.snippets import commands, run_script

SCAN = ROOT / "snippets" / "security" / "repo_scan.sh"
BASELINE = ROOT / ".secrets.baseline"
PAGE = ROOT / "docs" / "security" / "repositories.md"
# xargs exits 123 when a command it ran exited with 1-125: the hook found something.
FOUND = 123

# A fake AWS key pair: assembled here at run time, so this file holds no key to find.
FAKE_KEY_ID = "AKIA" + "Q3EGRV7X" + "LMNZ2KTB"
FAKE_PRIVATE_HALF = "wJalr" + "XUtnFEMI/K7" + "MDENG/bPxRfi" + "CYzq84nKVz"


def git(*args: str, cwd: Path = ROOT) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=30
    )
    return result.stdout


def locked_version(name: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == name)


def exclusions(baseline: dict) -> list[str]:
    """The --exclude-lines patterns a baseline carries."""
    (excluded,) = [f for f in baseline["filters_used"] if f["path"].endswith("should_exclude_line")]
    return excluded["pattern"]


def ignored(path: str) -> bool:
    """git would not add `path` (whether or not it exists): .gitignore matches it."""
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "--quiet", path], cwd=ROOT, check=False
    )
    return result.returncode == 0


# --- what never goes in git ----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        "examples/security/.env",
        ".env.production",
        "deploy/app.env.local",
        "local_settings.py",
        "certs/server.key",
        ".secrets/api_token",
    ],
)
def test_gitignore_keeps_secrets_and_local_settings_out(path: str) -> None:
    assert ignored(path)


@pytest.mark.parametrize(
    "path", [".env.example", "snippets/deployments/staging.env", "examples/security/settings.py"]
)
def test_gitignore_lets_committed_settings_in(path: str) -> None:
    """The control: the rules are narrow enough to let these through."""
    assert not ignored(path)


def test_no_tracked_file_is_ignored() -> None:
    """A file committed before its rule existed stays tracked: none does."""
    assert git("ls-files", "--cached", "--ignored", "--exclude-standard") == ""


def test_committed_env_files_hold_settings_not_secrets() -> None:
    env_files = [ROOT / f for f in git("ls-files", "*.env").split()]
    assert {f.name for f in env_files} >= {"staging.env", "production.env"}
    secret_name = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|CREDENTIAL", re.I)
    for path in env_files:
        for line in path.read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            name, _, value = line.partition("=")
            assert not secret_name.search(name), f"{path.name}: {line}"
            assert not re.search(r"://[^/@]*:[^/@]*@", value), f"{path.name}: a password in {line}"


# --- the secret scanner --------------------------------------------------------------


def test_the_hook_is_pinned_to_the_locked_detect_secrets() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    (repo,) = config["repos"]
    assert repo["repo"] == "https://github.com/Yelp/detect-secrets"
    assert repo["rev"] == "v" + locked_version("detect-secrets")
    (hook,) = repo["hooks"]
    assert hook["id"] == "detect-secrets"
    assert hook["args"] == ["--baseline", ".secrets.baseline"]
    # The hook's entry (Yelp's .pre-commit-hooks.yaml) is detect-secrets-hook: the
    # scan script runs that command with those arguments.
    (line,) = commands(SCAN)
    assert "detect-secrets-hook --baseline .secrets.baseline" in line


def test_the_baseline_holds_no_finding_and_no_stale_allowance() -> None:
    baseline = json.loads(BASELINE.read_text())
    assert baseline["version"] == locked_version("detect-secrets")
    assert baseline["results"] == {}  # nothing waved through by hash
    tracked = [ROOT / f for f in git("ls-files").split()]
    lines = [
        line
        for f in tracked
        if f.is_file()
        for line in f.read_text("utf-8", "replace").splitlines()
    ]
    for pattern in exclusions(baseline):
        hits = [line for line in lines if re.search(pattern, line)]
        # Each allowance names one known false positive; when its line goes, so must it.
        assert hits, f"{pattern!r} in .secrets.baseline matches no tracked line: remove it"


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A git repository with the project's baseline and scan script, and a clean file."""
    git("init", "--quiet", str(tmp_path))
    shutil.copy(BASELINE, tmp_path / ".secrets.baseline")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "settings.py").write_text('REGION = "eu-west-1"\n')
    return tmp_path


def scan(repo: Path, returncode: int) -> str:
    git("add", ".", cwd=repo)  # a scratch repository of this test's own
    result = run_script(SCAN, cwd=repo, returncode=returncode)
    return result.stdout + result.stderr


def test_a_clean_scratch_repository_passes(scratch: Path) -> None:
    """The control for the two tests below: the same repository without a key."""
    assert scan(scratch, 0) == ""


def test_a_planted_aws_key_fails_the_scan(scratch: Path) -> None:
    settings = scratch / "app" / "settings.py"
    settings.write_text(
        f'REGION = "eu-west-1"\nAWS_ACCESS_KEY_ID = "{FAKE_KEY_ID}"\n'
        f'AWS_SECRET_ACCESS_KEY = "{FAKE_PRIVATE_HALF}"\n'
    )
    output = scan(scratch, FOUND)
    assert "Potential secrets about to be committed" in output
    assert "Location:    app/settings.py:2" in output
    assert "AWS Access Key" in output
    assert FAKE_PRIVATE_HALF not in output  # the report names where, not what
    assert FAKE_KEY_ID not in output
    assert_output_is_shown(output, ROOT / "snippets" / "security" / "repo_scan_found.out")


def test_a_planted_password_fails_the_scan(scratch: Path) -> None:
    (scratch / ".env.staging").write_text("DATABASE_PASS" + "WORD=Tr0ub4dor-and-3-more\n")
    output = scan(scratch, FOUND)
    assert "Location:    .env.staging:1" in output
    assert "Secret Keyword" in output


def test_an_allowlisted_line_passes(scratch: Path) -> None:
    """What a false positive gets: a pragma on its line, seen in review."""
    (scratch / "app" / "settings.py").write_text(
        f'EXAMPLE_KEY_ID = "{FAKE_KEY_ID}"  # pragma: allowlist secret\n'
    )
    assert scan(scratch, 0) == ""


def test_the_lint_session_runs_the_scan_and_bandit() -> None:
    """The real tree is scanned there, not here: all of it takes about 10 s of CPU
    (detect-secrets reads every line with every plugin), and `./nox` runs lint first."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    lint = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "lint")
    runs = [
        [ast.literal_eval(a) for a in call.args]
        for call in ast.walk(lint)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "run"
        and all(isinstance(a, ast.Constant) for a in call.args)
    ]
    assert ["bash", "snippets/security/repo_scan.sh"] in runs
    assert ["bandit", "--quiet", "-c", "pyproject.toml", "-r", "examples"] in runs


def test_every_snippet_is_on_the_page() -> None:
    page = PAGE.read_text()
    assert '--8<-- "snippets/security/repo_scan.sh"' in page
    assert '--8<-- ".pre-commit-config.yaml"' in page
    assert '--8<-- ".gitignore:secrets"' in page


def test_a_finding_in_the_baseline_is_waved_through(scratch: Path) -> None:
    """Why the baseline must stay empty: refreshing it with a key present records the key,
    and from then on the scan passes it. The exclusions survive the refresh."""
    (scratch / "app" / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{FAKE_KEY_ID}"\n')
    git("add", ".", cwd=scratch)
    run_script(ROOT / "snippets" / "security" / "repo_baseline.sh", cwd=scratch)
    refreshed = json.loads((scratch / ".secrets.baseline").read_text())
    assert [s["type"] for s in refreshed["results"]["app/settings.py"]] == ["AWS Access Key"]
    assert exclusions(refreshed) == exclusions(json.loads(BASELINE.read_text()))
    assert scan(scratch, 0) == ""
