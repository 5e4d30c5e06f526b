"""The "launch binder" path on the dev cluster, at BinderHub's real interfaces.

BinderHub itself cannot be installed here, so its two sides are driven as BinderHub
drives them: the builder image runs as a build pod (the same arguments, the node's
Docker socket mounted, pushing to the local registry) and its JSON log stream is read;
then a real JupyterHub with KubeSpawner and pangeo-binder's hooks (deploy/jupyterhub,
configured by deploy/binderhub/values.yaml's hub.extraConfig) creates users and starts
their servers through the REST API with `image` in user_options, as BinderHub's launcher
does.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from conftest import EXAMPLES, REPO_ROOT, TEST_PREFIX, git, git_repo, require_registry, run_cli
from k8s_helpers import (
    dask_leftovers,
    dask_pods,
    isolation_probe,
    kubecluster_probe,
    kubectl,
    require_cluster,
    wait_until,
)

from pangeo_binder.badge import BinderRepo
from pangeo_binder.spec import parse_source

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:6]
BUILDS = f"pangeo-binder-builds-{RUN}"
ALICE, BOB, MALLORY = f"alice-{RUN}", f"bob-{RUN}", f"mallory-{RUN}"
PHASES = ["fetching", "building", "pushing", "built"]  # in this order, failed instead


@pytest.fixture(scope="module")
def registry(docker_engine) -> str:
    require_cluster()
    registry = require_registry()
    kubectl("create", "namespace", BUILDS)
    yield registry
    kubectl("delete", "namespace", BUILDS, "--wait=false", check=False)


@pytest.fixture(scope="module")
def builder(registry) -> str:
    result = run_cli("base", "--builder")
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def run_build_pod(builder: str, repo: Path, image: str) -> tuple[str, list[dict], list[str]]:
    """Run the builder as BinderHub's KubernetesBuildExecutor does; return the pod's
    final phase, its JSON log lines parsed, and any other lines (BinderHub forwards
    those with phase "unknown")."""
    sha = git(repo, "rev-parse", "HEAD")
    name = f"build-{uuid.uuid4().hex[:8]}"
    volumes = [{"name": "docker-socket",
                "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}},
               # Test only: BinderHub hands the builder a public URL; here the repository
               # is a local git repository, mounted where its file:// URL points.
               {"name": "repo", "hostPath": {"path": str(repo), "type": "Directory"}}]
    mounts = [{"name": "docker-socket", "mountPath": "/var/run/docker.sock"},
              {"name": "repo", "mountPath": str(repo), "readOnly": True}]
    env = []
    ca = next((os.environ[v] for v in ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE")
               if os.environ.get(v) and Path(os.environ[v]).is_file()), None)
    if ca:  # behind an intercepting proxy, the operator adds its CA the same way
        volumes.append({"name": "ca", "hostPath": {"path": ca, "type": "File"}})
        mounts.append({"name": "ca", "mountPath": "/etc/pangeo-binder/ca.pem", "readOnly": True})
        env.append({"name": "SSL_CERT_FILE", "value": "/etc/pangeo-binder/ca.pem"})
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": BUILDS,
                     "labels": {"name": name, "component": "binderhub-build"}},
        "spec": {
            "restartPolicy": "Never",
            "volumes": volumes,
            "containers": [{
                "name": "builder", "image": builder, "imagePullPolicy": "IfNotPresent",
                "args": ["jupyter-repo2docker", f"--ref={sha}", f"--image={image}",
                         "--no-clean", "--no-run", "--json-logs", "--user-name=jovyan",
                         "--user-id=1000", "--push", f"file://{repo}"],
                "volumeMounts": mounts, "env": env,
            }],
        },
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    phase = wait_until(lambda: kubectl("-n", BUILDS, "get", "pod", name, "-o",
                                       "jsonpath={.status.phase}") in ("Succeeded", "Failed")
                       and kubectl("-n", BUILDS, "get", "pod", name, "-o",
                                   "jsonpath={.status.phase}"), 1200, "the build pod ran")
    lines = kubectl("-n", BUILDS, "logs", name).splitlines()
    kubectl("-n", BUILDS, "delete", "pod", name, "--wait=false")
    events = [json.loads(line) for line in lines if line.startswith("{")]
    return phase, events, [line for line in lines if not line.startswith("{")]


def registry_tags(registry: str, repository: str) -> list[str]:
    try:
        with urllib.request.urlopen(f"http://{registry}/v2/{repository}/tags/list",
                                    timeout=10) as answer:
            return json.load(answer)["tags"] or []
    except urllib.error.HTTPError as error:
        assert error.code == 404
        return []


def example_repo(tmp: Path, example: str) -> Path:
    files = {str(p.relative_to(EXAMPLES / example)): p.read_text()
             for p in (EXAMPLES / example).rglob("*") if p.is_file()}
    return git_repo(tmp, files)


@pytest.fixture(scope="module")
def built(builder, registry, tmp_path_factory) -> str:
    """examples/quickstart built and pushed by a build pod, named as BinderHub names it."""
    repo = example_repo(tmp_path_factory.mktemp("quickstart"), "quickstart")
    image = BinderRepo.of(parse_source(f"file://{repo}")).image_name(
        f"{registry}/{TEST_PREFIX}binder-", git(repo, "rev-parse", "HEAD"))
    assert badge_check(repo, registry).returncode == 1  # not built yet
    phase, events, others = run_build_pod(builder, repo, image)
    assert phase == "Succeeded", events[-5:]
    assert others == []  # nothing but the JSON protocol
    return image, events, repo


def badge_check(repo: Path, registry: str):
    return run_cli("badge", f"file://{repo}", "--hub", "http://hub.example.org", "--check",
                   "--image-prefix", f"{registry}/{TEST_PREFIX}binder-")


def test_the_builder_runs_as_a_binderhub_build_pod_and_pushes(built, registry, docker_engine):
    image, events, _ = built
    assert all(set(event) == {"phase", "message"} for event in events)
    phases = [event["phase"] for event in events]
    assert phases[-1] == "built"
    assert set(phases) <= set(PHASES)
    assert [p for p in PHASES if p in phases] == PHASES
    assert sorted(phases, key=PHASES.index) == phases  # phases never go back
    repository, tag = image.split("/", 1)[1].rsplit(":", 1)
    assert tag in registry_tags(registry, repository)
    config = docker_engine.client.images.get(image).attrs["Config"]
    assert config["User"] == "1000"
    assert config["Labels"]["org.opencontainers.image.revision"] == tag


def test_badge_check_finds_the_image_binderhub_would_launch(built, registry):
    image, _, repo = built
    result = badge_check(repo, registry)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == f"built: {image}"


def test_a_failing_build_pod_ends_in_failed_and_pushes_nothing(builder, registry,
                                                               tmp_path_factory):
    repo = example_repo(tmp_path_factory.mktemp("fails"), "fails-to-build")
    repository = f"{TEST_PREFIX}binder-fails-{RUN}"
    phase, events, others = run_build_pod(builder, repo, f"{registry}/{repository}:x")
    assert phase == "Failed"
    assert events[-1]["phase"] == "failed"
    assert "pangeo-binder-no-such-package" in events[-1]["message"]
    # The error's one line on stderr, as for every command.
    assert others == [f"pangeo-binder: error: {events[-1]['message'].strip()}"]
    assert registry_tags(registry, repository) == []


# ---------------------------------------------------------------- JupyterHub + KubeSpawner

class Hub:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def api(self, method: str, path: str, body: dict | None = None,
            token: str | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"{self.url}/hub/api{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {token or self.token}",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                text = answer.read()
                return answer.status, json.loads(text) if text else {}
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def spawn(self, user: str, image: str) -> int:
        """As BinderHub's launcher: create the user, then start the server with the
        image (and the launcher's other options) as user_options."""
        status, _ = self.api("POST", f"/users/{user}")
        assert status in (201, 409), status
        status, _ = self.api("POST", f"/users/{user}/servers/", {
            "image": image, "repo_url": "https://github.com/pangeo-data/example",
            "token": uuid.uuid4().hex, "binder_ref_url": "https://example.org",
            "binder_launch_host": "https://binder.example.org/",
            "binder_request": "v2/gh/pangeo-data/example/main",
            "binder_persistent_request": "v2/gh/pangeo-data/example/abc"})
        return status

    def server(self, user: str) -> dict:
        return self.api("GET", f"/users/{user}")[1].get("servers", {}).get("", {})

    def wait_ready(self, user: str) -> None:
        def ready() -> bool:
            server = self.server(user)
            assert server, f"{user}'s spawn failed (see the hub's log)"
            return server.get("ready")

        wait_until(ready, 300, f"{user}'s server is ready")

    def user_token(self, user: str) -> str:
        status, body = self.api("POST", f"/users/{user}/tokens", {
            "note": "test", "expires_in": 3600, "scopes": [f"access:servers!user={user}"]})
        assert status == 201, body
        return body["token"]


@pytest.fixture(scope="module")
def hub(registry) -> Hub:
    result = run_cli("base", "--hub")
    assert result.returncode == 0, result.stderr[-3000:]
    settings = {
        "PANGEO_BINDER_ALLOWED_IMAGES": f"{registry}/{TEST_PREFIX}",
        # Small enough for a 2-core dev machine: two sessions, a scheduler, 2 workers.
        "PANGEO_BINDER_MAX_WORKERS": "2", "PANGEO_BINDER_WORKER_CORES": "200m",
        "PANGEO_BINDER_WORKER_MEMORY": "768Mi", "PANGEO_BINDER_SESSION_CORES": "300m",
        "PANGEO_BINDER_SESSION_MEMORY": "1Gi", "PANGEO_BINDER_IDLE_TIMEOUT": "600",
    }
    install = subprocess.run([str(REPO_ROOT / "deploy/jupyterhub/install"),
                              result.stdout.strip()], capture_output=True, text=True,
                             env={**os.environ, **settings}, timeout=600, check=False)
    assert install.returncode == 0, install.stderr[-3000:]
    exports = dict(line.removeprefix("export ").split("=", 1)
                   for line in install.stdout.splitlines() if line.startswith("export "))
    hub = Hub(exports["PANGEO_BINDER_HUB_URL"], exports["PANGEO_BINDER_HUB_TOKEN"])
    wait_until(lambda: hub.api("GET", "/")[0] == 200, 60, "the hub answers")
    yield hub
    for user in (ALICE, BOB, MALLORY):
        hub.api("DELETE", f"/users/{user}/server")
    wait_until(lambda: all(not hub.server(u) for u in (ALICE, BOB, MALLORY)), 120,
               "test servers stopped")
    for user in (ALICE, BOB, MALLORY):
        hub.api("DELETE", f"/users/{user}")
        kubectl("delete", "namespace", f"pangeo-{user}", "--wait=false", check=False)
    kubectl("delete", "namespace", "pangeo-hub", "--wait=false", check=False)
    kubectl("delete", "clusterrolebinding,clusterrole", "pangeo-binder-hub", check=False)
    kubectl("delete", "clusterrole", "pangeo-binder-hub-session", check=False)


def session_pod(user: str) -> dict:
    pods = json.loads(kubectl("-n", f"pangeo-{user}", "get", "pods", "-l",
                              "component=singleuser-server", "-o", "json"))["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def in_server(user: str, script: str, token: str) -> str:
    """Run Python in the user's server pod, with a token that opens the server."""
    return kubectl("-n", f"pangeo-{user}", "exec", "-i", session_pod(user)["metadata"]["name"],
                   "--", "env", f"USER_TOKEN={token}", "python", "-",
                   stdin="import warnings; warnings.simplefilter('ignore')\n" + script)


@pytest.fixture(scope="module")
def alice(hub, built) -> str:
    image, _, _ = built
    assert hub.spawn(ALICE, image) in (201, 202)
    hub.wait_ready(ALICE)
    return image


def test_a_spawn_lands_in_the_built_image_locked_down(hub, alice):
    pod = session_pod(ALICE)
    container = pod["spec"]["containers"][0]
    assert container["image"] == alice
    assert pod["spec"]["serviceAccountName"] == f"pangeo-{ALICE}"
    assert pod["metadata"]["labels"]["pangeo-binder/session"] == "true"
    security = container["securityContext"]
    assert security["runAsUser"] == 1000 and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["limits"]["cpu"] == "300m"
    role = json.loads(kubectl("-n", f"pangeo-{ALICE}", "get", "role", f"pangeo-{ALICE}-dask",
                              "-o", "json"))
    assert {"kubernetes.dask.org"} <= {g for r in role["rules"] for g in r["apiGroups"]}
    # Through the hub's proxy, with a token for Alice's server, as a browser would.
    request = urllib.request.Request(f"{hub.url}/user/{ALICE}/api/status",
                                     headers={"Authorization": f"token {hub.user_token(ALICE)}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


HUB_ACCOUNT = "system:serviceaccount:pangeo-hub:hub"


def hub_can(verb: str, resource: str, namespace: str) -> bool:
    answer = kubectl("auth", "can-i", verb, resource, "--as", HUB_ACCOUNT, "-n", namespace,
                     check=False)
    return answer.strip() == "yes"


def test_the_hub_holds_no_secrets_and_makes_pods_only_in_its_session_namespaces(hub, alice):
    rules = kubectl("auth", "can-i", "--list", "--as", HUB_ACCOUNT, "-n", "kube-system")
    granted = {row.split()[0]: row for row in rules.splitlines()[1:] if row.strip()}
    assert not [r for r in granted if r.startswith("secrets")], rules
    assert "create" not in granted.get("pods", ""), rules
    for namespace in ("default", "kube-system", "dask-operator"):
        for verb, resource in [("create", "pods"), ("get", "secrets"), ("list", "secrets"),
                               ("create", "secrets"), ("create", "rolebindings")]:
            assert not hub_can(verb, resource, namespace), (verb, resource, namespace)
    # Nor may it mark an existing namespace as one of its own.
    assert not hub_can("patch", "namespaces", "kube-system")
    # In the namespace of a session it made, it may.
    assert hub_can("create", "pods", f"pangeo-{ALICE}")
    assert hub_can("create", "secrets", f"pangeo-{ALICE}")
    # Playing the hub gone rogue: a pod in another namespace is refused by the API server.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rogue"},
           "spec": {"containers": [{"name": "x", "image": alice}]}}
    refused = subprocess.run(["kubectl", "-n", "default", "create", "--as", HUB_ACCOUNT,
                              "-f", "-"], input=json.dumps(pod), capture_output=True,
                             text=True, check=False)
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower(), refused.stderr


def test_kubecluster_in_a_hub_server_computes_and_belongs_to_it(hub, alice):
    out = in_server(ALICE, kubecluster_probe("USER_TOKEN"), hub.user_token(ALICE))
    assert "SUM 4000000.0" in out
    assert "VERSIONS 1" in out
    assert f"DASHBOARD /user/{ALICE}/proxy/work-scheduler.pangeo-{ALICE}:8787/status" in out
    assert "PROXIED 200" in out and "REFUSED 403" in out
    owners = json.loads(kubectl("-n", f"pangeo-{ALICE}", "get", "daskcluster", "work", "-o",
                                "jsonpath={.metadata.ownerReferences}"))
    assert [o["name"] for o in owners] == [session_pod(ALICE)["metadata"]["name"]]


def test_a_second_user_cannot_touch_the_first_users_cluster(hub, alice):
    assert hub.spawn(BOB, alice) in (201, 202)
    hub.wait_ready(BOB)
    ns = f"pangeo-{ALICE}"
    paths = {"daskclusters": f"/apis/kubernetes.dask.org/v1/namespaces/{ns}/daskclusters",
             "pods": f"/api/v1/namespaces/{ns}/pods",
             "secrets": f"/api/v1/namespaces/{ns}/secrets"}
    secret = kubectl("-n", ns, "get", "secrets", "-o", "jsonpath={.items[0].metadata.name}")
    names = {"daskclusters": "work", "pods": session_pod(ALICE)["metadata"]["name"],
             "secrets": secret}
    out = in_server(BOB, isolation_probe(paths, names, f"pangeo-{BOB}"), "unused")
    results = json.loads(out.strip().splitlines()[-1])
    assert results.pop("own daskclusters") == 200
    assert results == {key: 403 for key in results}, results
    assert "work" in kubectl("-n", ns, "get", "daskclusters", "-o", "name")


def test_stopping_a_server_removes_its_dask_cluster(hub, alice):
    ns = f"pangeo-{ALICE}"
    assert dask_pods(ns), "the 'work' cluster of an earlier test should be running"
    status, _ = hub.api("DELETE", f"/users/{ALICE}/server")
    assert status in (202, 204)
    wait_until(lambda: not hub.server(ALICE), 120, "the server stopped")
    # Seconds: the operator policy deletes a gone session's Dask pods at once; the bound
    # leaves room for garbage collection alone, at a loaded node's pace.
    wait_until(lambda: not dask_leftovers(ns), 120, "Alice's Dask cluster is still there", ns)


def test_a_spawn_may_not_choose_an_image_outside_the_allowed_prefixes(hub):
    status = hub.spawn(MALLORY, "docker.io/library/busybox:latest")
    if status in (201, 202):  # a slow spawn fails after the request returned
        wait_until(lambda: not hub.server(MALLORY).get("pending"), 60, "the spawn ended")
    assert not hub.server(MALLORY).get("ready")
    pods = kubectl("-n", f"pangeo-{MALLORY}", "get", "pods", "-o", "name", check=False)
    assert pods.strip() == ""

