"""The chapter's images, built once per test worker from the page's build.sh."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from kit.services.podman import BASE_IMAGE, HOME, Podman
from kit.snippets import commands, split

RECIPE_API = "localhost/recipe-api:0.1.0"
WEB_API = "localhost/web-api:0.1.0"
SNIPPETS = "snippets/containers"
MARKER = b"distributed-python build secret marker"


@pytest.fixture(scope="session")
def build_secret() -> Path:
    """The CA bundle pip needs here, plus a marker line PEM readers skip."""
    bundle = Path(ssl.get_default_verify_paths().openssl_cafile)
    secret = HOME / "pip_cert.pem"
    secret.write_bytes(bundle.read_bytes() + b"\n# " + MARKER + b"\n")
    return secret


@pytest.fixture(scope="session")
def images(podman: Podman, build_secret: Path) -> dict[str, str]:
    """Both images, built by the page's build.sh lines (cached layers make this seconds)."""
    built = []
    for line in commands(f"{SNIPPETS}/build.sh"):
        argv = split(line)[1]
        podman.build(argv, secrets={"pip_cert": build_secret})
        built.append(argv[argv.index("-t") + 1])
    assert built == ["recipe-api:0.1.0", "web-api:0.1.0"]
    return {"recipe-api": RECIPE_API, "web-api": WEB_API}


STAND_INS = Path(__file__).parent / "stand_ins"
STORES = {
    "docker.io/library/redis:7-bookworm": STAND_INS / "redis.Dockerfile",
    "docker.io/library/postgres:15-bookworm": STAND_INS / "postgres.Dockerfile",
}


@pytest.fixture(scope="session")
def stores(podman: Podman) -> list[str]:
    """compose.yaml's redis and postgres images. No public registry answers on these
    machines, so the tests build stand-ins from Debian 12's own packages (the same
    Redis 7 and PostgreSQL 15 majors), under the official names, in the tests' own
    image store, never the reader's. docs/containers/compose.md says so."""
    for name, dockerfile in STORES.items():
        podman.run(
            "build", "--pull=never", "--format", "docker", "--build-arg", f"BASE={BASE_IMAGE}",
            "-t", name, "-f", str(dockerfile), str(STAND_INS), timeout=600,
        )  # fmt: skip
    return list(STORES)
