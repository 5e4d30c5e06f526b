"""Workshop prewarming on the dev cluster, against the local registry.

Build and push a workshop's repositories, take their images off the node, prewarm, and
check what an organiser relies on: the images are on the node, status says ready, a
session launched afterwards pulls nothing, its arrival preempts a placeholder seat, and
stop leaves nothing of the workshop behind.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.helpers.cli import EXAMPLES, TEST_PREFIX, run_cli
from tests.helpers.k8s import kubectl, wait_until
from tests.helpers.repos import write_tree

RUN = uuid.uuid4().hex[:6]
NAME = f"test-{RUN}"
NAMESPACE = f"pangeo-prewarm-{NAME}"
USER = f"carla-{RUN}"
SESSION = ["--max-workers", "1", "--worker-cores", "100m", "--worker-memory", "256Mi",
           "--session-cores", "300m", "--session-memory", "1Gi"]


def millicores(text: str) -> int:
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def free_millicores() -> int:
    """CPU the node can still promise: allocatable minus what running pods request."""
    node = json.loads(kubectl("get", "nodes", "-o", "json"))["items"][0]
    allocatable = millicores(node["status"]["allocatable"]["cpu"])
    pods = json.loads(kubectl("get", "pods", "-A", "--field-selector",
                              "status.phase!=Succeeded,status.phase!=Failed", "-o", "json"))
    requested = sum(millicores(c.get("resources", {}).get("requests", {}).get("cpu", "0m"))
                    for p in pods["items"] for c in p["spec"]["containers"])
    return allocatable - requested


def workshop(tmp_path, registry: str, repos: list[str], seats: int, cores: str) -> str:
    text = (f"name: {NAME}\nimage_prefix: {registry}/{TEST_PREFIX}ws-\n"
            f"repos: {json.dumps(repos)}\n"
            f"seats: {{count: {seats}, cores: {cores}, memory: 64Mi}}\n"
            "until: 2099-01-01T00:00:00Z\n"
            "pause_image: k8s.gcr.io/pause:3.2  # the dev cluster's own\n")
    return str(write_tree(tmp_path, {f"workshop-{len(repos)}.yaml": text})
               / f"workshop-{len(repos)}.yaml")


@pytest.fixture(scope="module")
def registry(docker_engine, dev_cluster, local_registry) -> str:
    yield local_registry
    run_cli("stop", "--kubernetes", "--user", USER)
    kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
    kubectl("delete", "priorityclass", NAMESPACE, check=False)


@pytest.fixture(scope="module")
def pool(registry, docker_engine, tmp_path_factory):
    """Two repositories built and pushed with `build --from`, then taken off the node."""
    tmp = tmp_path_factory.mktemp("workshop")
    repos = [str(EXAMPLES / "quickstart"), str(EXAMPLES / "netcdf-tools")]
    path = workshop(tmp, registry, repos, 0, "1")
    result = run_cli("build", "--from", path)
    assert result.returncode == 0, result.stderr[-3000:]
    images = result.stdout.split()
    assert len(images) == 2 and all(i.startswith(f"{registry}/{TEST_PREFIX}ws-") for i in images)
    assert result.stderr.count("built") + result.stderr.count("cached") >= 2
    for image in images:
        docker_engine.client.images.remove(image)  # this name is no longer on the node
        assert docker_engine.image_id(image) is None
    # Two seats that fill the node: a session can only start by preempting one. Sized
    # once earlier tests' pods have gone, so their room is not counted as taken.
    wait_until(lambda: "Terminating" not in kubectl("get", "pods", "-A"), 180,
               "pods of earlier tests are still terminating")
    path = workshop(tmp, registry, repos, 2, f"{max(free_millicores() // 2 - 10, 50)}m")
    return path, images, tmp


def test_prewarm_pulls_every_image_onto_the_node(pool, docker_engine):
    path, images, _ = pool
    result = run_cli("prewarm", path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "images pulled per node: pangeo-binder-dev: 2/2" in result.stderr
    for image in images:
        assert docker_engine.image_id(image) is not None
    status = run_cli("prewarm", "status", path, "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    values = json.loads(status.stdout)
    assert values["ready"] and values["nodes_ready"] == values["nodes_wanted"] == 1
    assert values["seats_held"] == values["seats_wanted"] == 2
    assert values["images"] == images and values["expired"] is False


def test_a_session_after_prewarm_pulls_nothing_and_preempts_a_seat(pool):
    path, images, _ = pool
    result = run_cli("launch", images[0], "--kubernetes", "--user", USER, *SESSION)
    assert result.returncode == 0, result.stderr[-3000:]
    ns, pod = f"pangeo-{USER}", f"pangeo-{USER}-session"
    reasons = kubectl("-n", ns, "get", "events", "--field-selector",
                      f"involvedObject.name={pod}", "-o", "jsonpath={.items[*].reason}").split()
    assert "Pulled" in reasons or "Started" in reasons
    assert "Pulling" not in reasons
    preempted = kubectl("-n", NAMESPACE, "get", "events", "--field-selector",
                        "reason=Preempted", "-o", "jsonpath={.items[*].message}")
    assert pod in preempted
    status = json.loads(run_cli("prewarm", "status", path, "--json").stdout)
    assert status["seats_held"] == 1  # the other waits for room
    assert run_cli("stop", "--kubernetes", "--user", USER).returncode == 0


def test_prewarm_again_updates_the_image_list_in_place(pool, registry):
    _, images, tmp = pool
    uid = kubectl("-n", NAMESPACE, "get", "daemonset", "puller", "-o",
                  "jsonpath={.metadata.uid}")
    one = workshop(tmp, registry, [str(EXAMPLES / "quickstart")], 1, "50m")
    result = run_cli("prewarm", one)
    assert result.returncode == 0, result.stderr[-3000:]
    status = json.loads(run_cli("prewarm", "status", one, "--json").stdout)
    assert status["images"] == images[:1] and status["ready"]
    assert status["seats_wanted"] == 1
    assert kubectl("-n", NAMESPACE, "get", "daemonset", "puller", "-o",
                   "jsonpath={.metadata.uid}") == uid  # the same pool, updated


def test_stop_removes_the_workshop_and_nothing_else(pool, docker_engine):
    path, images, _ = pool
    namespaces = set(kubectl("get", "namespaces", "-o", "name").split())
    result = run_cli("prewarm", "stop", path)
    assert result.returncode == 0, result.stderr
    assert kubectl("get", "namespace", NAMESPACE, check=False) == ""
    assert kubectl("get", "priorityclass", NAMESPACE, check=False) == ""
    assert set(kubectl("get", "namespaces", "-o", "name").split()) == \
        namespaces - {f"namespace/{NAMESPACE}"}
    assert docker_engine.image_id(images[0]) is not None  # pulled images stay cached
    again = run_cli("prewarm", "stop", path)
    assert again.returncode == 0 and "nothing to remove" in again.stderr
    missing = run_cli("prewarm", "status", path)
    assert missing.returncode == 1 and "is not prewarmed" in missing.stderr


def test_an_image_that_cannot_be_pulled_fails_clearly_and_leaves_nothing(registry, tmp_path):
    name = f"broken-{RUN}"
    path = write_tree(tmp_path, {"workshop.yaml": (
        f"name: {name}\nimage_prefix: {registry}/{TEST_PREFIX}ws-\n"
        f"images: [{registry}/{TEST_PREFIX}no-such-image:1]\n"
        "pause_image: k8s.gcr.io/pause:3.2\n")}) / "workshop.yaml"
    result = run_cli("prewarm", str(path), "--timeout", "300")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("pangeo-binder: error: cannot prewarm pangeo-binder-dev: ")
    assert "no-such-image:1" in last and "Traceback" not in result.stderr
    assert kubectl("get", "namespace", f"pangeo-prewarm-{name}", check=False) == ""
    assert kubectl("get", "priorityclass", f"pangeo-prewarm-{name}", check=False) == ""
