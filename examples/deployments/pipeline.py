"""A release pipeline small enough to read: build, release, roll back.

The book's words, made into commands:

- a **build** is one commit turned into an artifact: the source comes from
  `git archive` of that commit (never from a working tree with edits in it), is
  linted, tested, and packed into a wheel, written with its sha256;
- a **release** is a build plus one environment's configuration, unpacked to
  `releases/<name>`; names only ever increase (`v1`, `v2`...), even after a
  rollback;
- **current** is a symlink to the live release, switched atomically (a new link,
  then `rename(2)` over the old one), so there is never a moment without one;
- a **rollback** points `current` back at the previous release.

Run it from the repository root (a git checkout), with ruff, pytest, build and
hatchling installed, and the service's dependencies (sanic, orjson,
pydantic-settings) in the same environment:

    python examples/deployments/pipeline.py build HEAD
    python examples/deployments/pipeline.py release BUILD_DIR CONFIG_FILE --to ENV_DIR
    python examples/deployments/pipeline.py rollback --to ENV_DIR

(snippets/deployments/pipeline.sh runs them for staging and production).

Options: `--repo` (default `.`), `--package` (default
`examples/deployments/recipe_api_package`, the packaged recipe-api), `--out`
(default `deploy/builds`). A failing step stops the pipeline with its output and
exit code 1, before anything is written; a bad argument exits 2 with one line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_PACKAGE = "examples/deployments/recipe_api_package"

# What pip writes for a console script, pointed at the release's own lib/.
LAUNCHER = """#!{python}
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "lib"))
from recipe_api.app import main
sys.exit(main())
"""


class PipelineError(Exception):
    """A step failed; the message says which and why."""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def step(name: str, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    """Run one step; its output is shown only when it fails."""
    print(f"--> {name}", flush=True)
    result = subprocess.run(
        argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise PipelineError(f"{name} failed:\n{result.stdout}{result.stderr}")


# --8<-- [start:build]
def build(repo: Path, commit: str, package: str, out: Path) -> Path:
    """Lint, test and pack one commit; returns the build's directory."""
    found = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"],
        capture_output=True, text=True,
    )  # fmt: skip
    if found.returncode != 0:
        raise PipelineError(f"no commit {commit!r} in {repo}")
    sha = found.stdout.strip()
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch)
        # The commit's files, and only those: an edit not committed is not built.
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", sha, package], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", scratch], input=archive.stdout, check=True)
        source = source / package
        if not (source / "pyproject.toml").exists():
            raise PipelineError(f"{package} has no pyproject.toml at {sha[:12]}")
        python = sys.executable
        step("lint", [python, "-m", "ruff", "check", "--no-cache", "."], source)
        step("test", [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], source,
             env={"PYTHONPATH": str(source / "src")})  # fmt: skip
        dist = source / "dist"
        step("wheel", [python, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                       str(dist), "."], source)  # fmt: skip
        (wheel,) = dist.glob("*.whl")
        version = wheel.name.split("-")[1]
        target = out / f"{version}-{sha[:12]}"
        target.mkdir(parents=True, exist_ok=True)
        (target / wheel.name).write_bytes(wheel.read_bytes())
    record = {"commit": sha, "version": version, "wheel": wheel.name,
              "sha256": sha256(target / wheel.name)}  # fmt: skip
    (target / "build.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"built {target} ({record['sha256'][:12]})")
    return target


# --8<-- [end:build]


# --8<-- [start:names]
def release_names(root: Path) -> list[int]:
    return sorted(int(p.name[1:]) for p in (root / "releases").glob("v*") if p.name[1:].isdigit())


def next_name(root: Path) -> str:
    """One more than any name ever used here: the counter never goes back."""
    counter = root / "releases" / "last"
    used = max([int(counter.read_text()) if counter.exists() else 0, *release_names(root)])
    counter.write_text(f"{used + 1}\n")
    return f"v{used + 1}"


def switch(root: Path, name: str) -> None:
    """Point `current` at releases/<name> in one rename: never missing, never half."""
    link = root / "current.new"
    link.unlink(missing_ok=True)
    link.symlink_to(Path("releases") / name)
    os.replace(link, root / "current")


# --8<-- [end:names]


# --8<-- [start:release]
def release(build_dir: Path, config: Path, root: Path) -> str:
    """Unpack a build with one environment's configuration; make it current."""
    record = json.loads((build_dir / "build.json").read_text())
    wheel = build_dir / record["wheel"]
    if sha256(wheel) != record["sha256"]:
        raise PipelineError(f"{wheel} does not match the digest it was built with")
    (root / "releases").mkdir(parents=True, exist_ok=True)
    name = next_name(root)
    target = root / "releases" / name
    with zipfile.ZipFile(wheel) as archive:  # a wheel is a zip: unpacking is installing
        archive.extractall(target / "lib")
    (target / "bin").mkdir()
    launcher = target / "bin" / "recipe-api"
    launcher.write_text(LAUNCHER.format(python=sys.executable))
    launcher.chmod(0o755)
    (target / "release.env").write_text(config.read_text())
    manifest = {**record, "release": name, "config": config.name,
                "config_sha256": sha256(config),
                "created": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    (target / "release.json").write_text(json.dumps(manifest, indent=2) + "\n")
    switch(root, name)
    print(f"released {name} to {root} ({record['version']}, {config.name})")
    return name


# --8<-- [end:release]


# --8<-- [start:rollback]
def rollback(root: Path) -> str:
    """Make the release before the current one current again."""
    current = (root / "current").resolve().name
    earlier = [n for n in release_names(root) if n < int(current[1:])]
    if not earlier:
        raise PipelineError(f"{current} is the first release in {root}: nothing to roll back to")
    name = f"v{earlier[-1]}"
    switch(root, name)
    print(f"rolled back {root} from {current} to {name}")
    return name


# --8<-- [end:rollback]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build", help="lint, test and pack a commit")
    b.add_argument("commit")
    b.add_argument("--repo", type=Path, default=Path("."))
    b.add_argument("--package", default=DEFAULT_PACKAGE)
    b.add_argument("--out", type=Path, default=Path("deploy/builds"))
    r = commands.add_parser("release", help="a build plus a configuration, made current")
    r.add_argument("build", type=Path)
    r.add_argument("config", type=Path)
    r.add_argument("--to", type=Path, required=True, help="the environment's directory")
    u = commands.add_parser("rollback", help="make the previous release current")
    u.add_argument("--to", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build(args.repo, args.commit, args.package, args.out)
        elif args.command == "release":
            for path in (args.build / "build.json", args.config):
                if not path.is_file():
                    parser.error(f"{path} does not exist")
            release(args.build, args.config, args.to)
        else:
            if not (args.to / "current").is_symlink():
                parser.error(f"{args.to} has no current release")
            rollback(args.to)
    except PipelineError as error:
        print(f"pipeline stopped: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
