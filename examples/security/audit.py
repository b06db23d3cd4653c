"""Audit pinned dependencies with pip-audit, and fail unless every package was checked.

pip-audit says "No known vulnerabilities found" and exits 0 when it could not check
a single package (it lists them as skipped), and a vulnerability database it cannot
reach ends it with a traceback. This wrapper turns every outcome into one clear line
and an exit code a CI job can trust:

- 0: every package was checked, and none has a known vulnerability;
- 1: a known vulnerability (a line per finding), or no complete audit: the
  database unreachable, a package skipped, no answer within `AUDIT_TIMEOUT`.

Run it (on the lock exported with hashes, see docs/security/dependencies.md):

    python examples/security/audit.py requirements.lock.txt

Environment:

- `AUDIT_SERVICE`: the vulnerability database, `osv` or `pypi` (default `osv`).
- `OSV_URL`: the OSV query API (default `https://api.osv.dev/v1/query`).
- `AUDIT_TIMEOUT`: seconds the whole audit may take (default `120`).

A bad setting (`AUDIT_SERVICE=nvd`, `AUDIT_TIMEOUT=0`) exits 2 with one line
naming the variable.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, ValidationError
from pydantic_settings import BaseSettings


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: AUDIT_SERVICE, OSV_URL, AUDIT_TIMEOUT."""

    audit_service: Literal["osv", "pypi"] = "osv"
    osv_url: AnyHttpUrl = AnyHttpUrl("https://api.osv.dev/v1/query")
    audit_timeout: float = Field(120, gt=0)


def load_settings() -> Settings:
    """The settings, or exit code 2 with one line per bad variable and no traceback."""
    try:
        return Settings()
    except ValidationError as error:
        for problem in error.errors():
            name = str(problem["loc"][0]).upper()
            print(f"configuration error: {name}: {problem['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


# --8<-- [end:settings]


# --8<-- [start:audit]
def pip_audit(requirements: Path, settings: Settings) -> subprocess.CompletedProcess[str]:
    """pip-audit on a hashed lock: no resolution, no venv, one query per pinned package."""
    command = [
        sys.executable, "-m", "pip_audit",
        "--requirement", str(requirements),
        "--require-hashes", "--disable-pip",  # audit exactly what the lock pins
        "--vulnerability-service", settings.audit_service,
        "--osv-url", str(settings.osv_url),
        "--format", "json", "--progress-spinner", "off",
        "--timeout", "15",  # per request; AUDIT_TIMEOUT bounds the whole (DNS included)
    ]  # fmt: skip
    return subprocess.run(
        command, capture_output=True, text=True, timeout=settings.audit_timeout, check=False
    )


def verdict(result: subprocess.CompletedProcess[str]) -> tuple[int, list[str]]:
    """Exit code and lines to print. Anything but a complete, clean audit is a failure."""
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:  # pip-audit died: no report at all
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return 1, [f"audit failed: could not audit, pip-audit exited {result.returncode}: {last}"]
    packages = report["dependencies"]
    if not packages:
        return 1, ["audit failed: no packages in the file, nothing was audited"]
    skipped = [p for p in packages if "skip_reason" in p]
    if skipped:
        return 1, [
            f"audit failed: {len(skipped)} of {len(packages)} packages could not be audited"
            f" (first: {skipped[0]['skip_reason']})"
        ]
    findings = [
        f"vulnerable: {p['name']} {p['version']} {v['id']}"
        f" (fixed in {', '.join(v['fix_versions']) or 'no release yet'})"
        for p in packages
        for v in p["vulns"]
    ]
    if findings:
        return 1, [*findings, f"audit failed: {len(findings)} known vulnerabilities"]
    return 0, [f"audit passed: {len(packages)} packages checked, no known vulnerabilities"]


# --8<-- [end:audit]


def main() -> None:
    settings = load_settings()
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_file():
        print("usage: audit.py REQUIREMENTS_FILE (pinned, with hashes)", file=sys.stderr)
        raise SystemExit(2)
    try:
        code, lines = verdict(pip_audit(Path(sys.argv[1]), settings))
    except subprocess.TimeoutExpired:
        code, lines = 1, [f"audit failed: no answer within {settings.audit_timeout:g} s"]
    print("\n".join(lines), file=sys.stdout if code == 0 else sys.stderr)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
