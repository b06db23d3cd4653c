"""recipe-api's image: its size, how long it takes to build, how fast it starts.

- Size: the multi-stage image of the page against the same service built in one
  stage (snippets/containers/single_stage.Dockerfile), as `podman image inspect`
  reports them, and the base image alone.
- Build time: cold (`--no-cache`), then again after a change to the program only
  (a copy of the build context with one more comment line in recipe_api.py): the
  dependency layers come from the cache.
- Start: from `podman run -d` to the first 200 on /health, against starting the
  bare program with its run line; median of ROUNDS.

Built on the local base image the tests use (see kit.services.podman), with the
machine's CA bundle as the pip_cert build secret. Writes
snippets/containers/bench_images.md.
"""

from __future__ import annotations

import shutil
import ssl
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from kit.examples import start_example
from kit.process import LOOPBACK, ROOT, free_port, wait_until
from kit.services.podman import BASE_IMAGE, Podman, setup

from bench.common import markdown_table, stamp, write_results

RESULTS = "containers/bench_images.md"
COMMAND = "./nox -s bench -- container_images"
ROUNDS = 5
CONTEXT_FILES = (
    "requirements/services.txt",
    "examples/why_distributed/recipe_api.py",
    "snippets/containers/recipe_api.Dockerfile",
    "snippets/containers/single_stage.Dockerfile",
    ".dockerignore",
)


def build(podman: Podman, context: Path, dockerfile: str, tag: str, *extra: str) -> float:
    secret = ssl.get_default_verify_paths().openssl_cafile
    started = time.perf_counter()
    podman.run(
        "build", "--pull=never", "--format", "docker", "--build-arg", f"BASE={BASE_IMAGE}",
        "--secret", f"id=pip_cert,src={secret}", *extra,
        "-f", str(context / dockerfile), "-t", tag, str(context), timeout=900,
    )  # fmt: skip
    return time.perf_counter() - started


def size_mb(podman: Podman, image: str) -> float:
    return podman.inspect("image", image)["Size"] / 1e6


def first_health(url: str) -> None:
    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, 30, f"{url}/health")


def container_start(podman: Podman, image: str) -> float:
    port = free_port()
    name = podman.unique("bench")
    started = time.perf_counter()
    podman.run("run", "-d", "--name", name, "-p", f"{LOOPBACK}:{port}:4000", image)
    try:
        first_health(f"http://{LOOPBACK}:{port}")
        return time.perf_counter() - started
    finally:
        podman.run("rm", "-f", "-t", "0", name, check=False)


def bare_start(log_dir: Path) -> float:
    started = time.perf_counter()
    running = start_example("why_distributed/recipe_api.py", log_dir, ready="/health")
    elapsed = time.perf_counter() - started
    running.stop()
    return elapsed


def main() -> None:
    podman = setup()
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        context = Path(tmp)
        for name in CONTEXT_FILES:
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, context / name)
        multi, single = "localhost/bench-recipe-api:multi", "localhost/bench-recipe-api:single"
        cold = build(
            podman, context, "snippets/containers/recipe_api.Dockerfile", multi, "--no-cache"
        )
        build(podman, context, "snippets/containers/single_stage.Dockerfile", single)
        program = context / "examples/why_distributed/recipe_api.py"
        program.write_text(program.read_text() + "\n# a code-only change\n")
        cached = build(podman, context, "snippets/containers/recipe_api.Dockerfile", multi)
        sizes = {image: size_mb(podman, image) for image in (BASE_IMAGE, multi, single)}
        container = statistics.median(container_start(podman, multi) for _ in range(ROUNDS))
        bare = statistics.median(bare_start(context) for _ in range(ROUNDS))
        for image in (multi, single):
            podman.run("rmi", image, check=False)

    body = "\n\n".join(
        [
            markdown_table(
                ["image", "size"],
                [
                    ["base (Debian 12 minbase + python3, venv)", f"{sizes[BASE_IMAGE]:.0f} MB"],
                    ["recipe-api, multi-stage (the page's file)", f"{sizes[multi]:.0f} MB"],
                    ["recipe-api, one stage", f"{sizes[single]:.0f} MB"],
                ],
            ),
            markdown_table(
                ["build of the multi-stage image", "seconds"],
                [
                    ["cold (`--no-cache`: every layer, pip from PyPI)", f"{cold:.1f}"],
                    ["after a change to recipe_api.py only", f"{cached:.1f}"],
                ],
            ),
            markdown_table(
                [f"start to first 200 on /health (median of {ROUNDS})", "seconds"],
                [
                    ["`podman run -d` of the image", f"{container:.2f}"],
                    ["the bare program, `python examples/...`", f"{bare:.2f}"],
                ],
            ),
        ]
    )
    line = stamp(["sanic"], {"podman": ["podman", "--version"]})
    write_results(RESULTS, body, line, COMMAND)
