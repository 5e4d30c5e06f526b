"""The "launch binder" path on the dev cluster, at BinderHub's real interfaces.

BinderHub itself cannot be installed here, so its two sides are driven as BinderHub
drives them: the builder image runs as a build pod (the same arguments, the node's
Docker socket mounted, pushing to the local registry) and its JSON log stream is read;
then a real JupyterHub, configured as BinderHub's chart configures it without login
(deploy/jupyterhub with deploy/binderhub/values.yaml's hub.extraConfig), is spoken to
exactly as BinderHub's launcher speaks to it (binderhub_launcher.py), and the link it
hands out is opened as a browser would. test_binderhub_auth.py does the same with login.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from pangeo_binder.hub.badge import BinderRepo
from pangeo_binder.kube import user_slug
from pangeo_binder.spec import parse_source
from tests.helpers.binderhub_launcher import (
    HUB_ACCOUNT,
    REPO_URL,
    Browser,
    Launch,
    Launcher,
    LaunchFailed,
    hub_namespaces,
    install_hub,
    opens_jupyterlab,
    remove_hub,
)
from tests.helpers.cli import EXAMPLES, REPO_ROOT, TEST_PREFIX, run_cli
from tests.helpers.k8s import (
    dask_leftovers,
    dask_pods,
    isolation_probe,
    kubecluster_probe,
    kubectl,
    wait_until,
)
from tests.helpers.repos import git, git_repo
from tests.helpers.session_attacks import (
    ALLOWLIST_PROBE,
    HTTP_INTRUDER_PROBE,
    HTTP_OWNER_PROBE,
    INTRUDER_PROBE,
    allowlist_results,
)

RUN = uuid.uuid4().hex[:6]
BUILDS = f"pangeo-binder-builds-{RUN}"
PHASES = ["fetching", "building", "pushing", "built"]  # in this order, failed instead


@pytest.fixture(scope="module")
def registry(docker_engine, dev_cluster, local_registry) -> str:
    kubectl("create", "namespace", BUILDS)
    yield local_registry
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


def example_repo(tmp: Path, example: str, under: Path = EXAMPLES) -> Path:
    files = {str(p.relative_to(under / example)): p.read_text()
             for p in (under / example).rglob("*") if p.is_file()}
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
    assert all(set(event) == {"phase", "message"} for event in events[:-1])
    assert events[-1] == {"phase": "built", "message": f"Built {image}\n", "imageName": image}
    phases = [event["phase"] for event in events]
    assert set(phases) <= set(PHASES)
    assert [p for p in PHASES if p in phases] == PHASES
    assert sorted(phases, key=PHASES.index) == phases  # phases never go back
    repository, tag = image.split("/", 1)[1].rsplit(":", 1)
    assert tag in registry_tags(registry, repository)
    config = docker_engine.client.images.get(image).attrs["Config"]
    assert config["User"] == "1000"
    # The commit the image was first built from: identical content from another commit
    # (an earlier test run's repository, say) is the same image, labels and all.
    assert re.fullmatch(r"[0-9a-f]{40}", config["Labels"]["org.opencontainers.image.revision"])


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
    # Every line is JSON: the error's one line is the last event's message.
    assert others == []
    assert [event["phase"] for event in events].count("failed") == 1
    assert registry_tags(registry, repository) == []


def test_a_build_pod_builds_an_old_environment_yml_standalone_from_pypi(
        builder, registry, docker_engine, tmp_path_factory):
    """What a tutorial on mybinder.org carries: a conda-forge environment.yml with old
    pins. The build pod installs it from PyPI, in a standalone environment where its pins
    win, and BinderHub's log stream carries the notices saying so."""
    repo = example_repo(tmp_path_factory.mktemp("old-pins"), "environment-yml-old-pins",
                        under=REPO_ROOT / "tests" / "corpus")
    repository = f"{TEST_PREFIX}binder-old-pins-{RUN}"
    image = f"{registry}/{repository}:{git(repo, 'rev-parse', 'HEAD')[:12]}"
    phase, events, others = run_build_pod(builder, repo, image)
    assert phase == "Succeeded", events[-5:]
    assert others == []
    notices = [e["message"] for e in events if e["message"].startswith("Notice:")]
    assert any("binder/environment.yml is installed from PyPI" in n for n in notices), notices
    assert any("xarray 2025.1" in n and "standalone environment" in n for n in notices), notices
    assert events[-1]["imageName"] == image
    assert image.split(":")[-1] in registry_tags(registry, repository)
    versions = docker_engine.run(image, ["python", "-c", "import xarray, dask_kubernetes; "
                                         "print('xarray', xarray.__version__)"])
    assert versions.exit_code == 0, versions.output[-2000:]
    assert "xarray 2025.1." in versions.output, versions.output


def test_a_strict_builder_refuses_the_pins_a_default_one_builds_standalone(
        registry, tmp_path_factory):
    """An operator who wants one stack for everyone bakes it into the build image, since
    BinderHub gives build pods no settings of their own."""
    result = run_cli("base", "--builder", "--strict-base")
    assert result.returncode == 0, result.stderr[-3000:]
    strict_builder = result.stdout.strip()
    repo = example_repo(tmp_path_factory.mktemp("strict"), "environment-yml-old-pins",
                        under=REPO_ROOT / "tests" / "corpus")
    repository = f"{TEST_PREFIX}binder-strict-{RUN}"
    phase, events, others = run_build_pod(strict_builder, repo, f"{registry}/{repository}:x")
    assert phase == "Failed" and others == []
    assert events[-1]["phase"] == "failed"
    assert events[-1]["message"].startswith(
        "binder/environment.yml asks for numpy=2.1 (numpy==2.1.* on PyPI) but the Pangeo "
        "base pins numpy=="), events[-1]
    assert registry_tags(registry, repository) == []


# ------------------------------------------- a badge click: BinderHub's launcher, no login

@pytest.fixture(scope="module")
def hub(registry) -> Launcher:
    installed = install_hub(registry, auth=False)
    launcher = Launcher(installed.url, installed.api_token, auth_enabled=False)
    wait_until(lambda: launcher.request("GET", "")[0] == 200, 60, "the hub answers")
    yield launcher
    remove_hub(launcher)


def namespace_of(user: str) -> str:
    """The user's session namespace: `pangeo-{username}` with KubeSpawner's safe slug of
    the name (a temporary user's name may hold "--", which it escapes), found by the
    label pangeo-binder gives it."""
    names = kubectl("get", "namespaces", "-l", f"pangeo-binder/user={user_slug(user)}",
                    "-o", "jsonpath={.items[*].metadata.name}").split()
    assert len(names) == 1, (user, names)
    return names[0]


def session_pod(user: str) -> dict:
    pods = json.loads(kubectl("-n", namespace_of(user), "get", "pods", "-l",
                              "component=singleuser-server", "-o", "json"))["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def in_server(user: str, script: str, token: str) -> str:
    """Run Python in the user's server pod, with a token that opens the server."""
    return kubectl("-n", namespace_of(user), "exec", "-i", session_pod(user)["metadata"]["name"],
                   "--", "env", f"USER_TOKEN={token}", "python", "-",
                   stdin="import warnings; warnings.simplefilter('ignore')\n" + script)


@pytest.fixture(scope="module")
def alice(hub, built) -> Launch:
    """A badge click on the built repository: BinderHub's launcher makes a temporary user
    and starts its server with the image and a token of its own making."""
    image, _, _ = built
    return hub.launch(image, Launcher.unique_name())


def test_a_badge_click_opens_jupyterlab_with_the_token_binderhub_made(hub, alice):
    assert alice.events[-1]["ready"] is True
    # The browser's step: BinderHub sends it to {url}?token={token}.
    page = Browser().get(f"{alice.url}?token={alice.token}")
    assert opens_jupyterlab(page), (page.status, page.url, page.text[:300])
    # Any other token, or none, opens nothing: not the lab, not the API.
    for token in ("", Launcher.unique_name(), alice.token[:-1]):
        page = Browser().get(f"{alice.url}?token={token}")
        assert not opens_jupyterlab(page), token
        assert Browser().get(f"{alice.url}api/contents?token={token}").status == 403, token
    # The server is a plain Jupyter server with exactly that token: hub tokens mean
    # nothing to it, so not even the binder service's own token opens it.
    assert Browser().get(f"{alice.url}api/contents?token={hub.api_token}").status == 403
    assert Browser().get(f"{alice.url}api/contents?token={alice.token}").status == 200


def test_a_spawn_lands_in_the_built_image_locked_down(hub, alice, built):
    pod = session_pod(alice.username)
    container = pod["spec"]["containers"][0]
    assert container["image"] == built[0]
    assert container["args"][0] == "jupyter-lab"  # BinderSpawner gives it the token
    ns = namespace_of(alice.username)
    assert pod["spec"]["serviceAccountName"] == f"pangeo-{user_slug(alice.username)}"
    assert pod["metadata"]["labels"]["pangeo-binder/session"] == "true"
    security = container["securityContext"]
    assert security["runAsUser"] == 1000 and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["limits"]["cpu"] == "300m"
    env = {e["name"]: e for e in container["env"]}
    assert env["BINDER_REQUEST"]["value"] == "v2/gh/pangeo-data/pangeo-binder-example/main"
    assert env["DASK_KUBERNETES__NAMESPACE"]["value"] == ns
    assert env["DASK_KUBERNETES__IMAGE"]["value"] == built[0]
    assert env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"]["value"] == "True"
    role = json.loads(kubectl("-n", ns, "get", "role",
                              f"pangeo-{user_slug(alice.username)}-dask", "-o", "json"))
    assert {"kubernetes.dask.org"} <= {g for r in role["rules"] for g in r["apiGroups"]}


def hub_can(verb: str, resource: str, namespace: str) -> bool:
    answer = kubectl("auth", "can-i", verb, resource, "--as", HUB_ACCOUNT, "-n", namespace,
                     check=False)
    return answer.strip() == "yes"


def test_the_hub_holds_no_secrets_and_makes_pods_only_in_its_session_namespaces(hub, alice,
                                                                                 built):
    ns = namespace_of(alice.username)
    rules = kubectl("auth", "can-i", "--list", "--as", HUB_ACCOUNT, "-n", "kube-system")
    granted = {row.split()[0]: row for row in rules.splitlines()[1:] if row.strip()}
    assert not [r for r in granted if r.startswith("secrets")], rules
    assert "create" not in granted.get("pods", ""), rules
    for namespace in ("default", "kube-system", "dask-operator"):
        for verb, resource in [("create", "pods"), ("get", "secrets"), ("list", "secrets"),
                               ("create", "secrets"), ("create", "rolebindings")]:
            assert not hub_can(verb, resource, namespace), (verb, resource, namespace)
        assert not hub_can("delete", f"namespace/{namespace}", namespace), namespace
    # Nor may it mark an existing namespace as one of its own.
    assert not hub_can("patch", "namespaces", "kube-system")
    # In the namespace of a session it made, it may, and it may delete that namespace.
    assert hub_can("create", "pods", ns)
    assert hub_can("create", "secrets", ns)
    assert hub_can("delete", f"namespace/{ns}", ns)
    # Playing the hub gone rogue: a pod in another namespace, or deleting one, is refused
    # by the API server.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rogue"},
           "spec": {"containers": [{"name": "x", "image": built[0]}]}}
    for command, stdin in [(["-n", "default", "create", "-f", "-"], json.dumps(pod)),
                           (["delete", "namespace", "dask-operator"], None)]:
        refused = subprocess.run(["kubectl", "--as", HUB_ACCOUNT, *command], input=stdin,
                                 capture_output=True, text=True, check=False)
        assert refused.returncode != 0 and "forbidden" in refused.stderr.lower(), \
            refused.stderr


def test_kubecluster_in_a_hub_server_computes_and_belongs_to_it(hub, alice):
    user = alice.username
    out = in_server(user, kubecluster_probe("USER_TOKEN"), alice.token)
    assert "SUM 4000000.0" in out
    assert "VERSIONS 1" in out
    ns = namespace_of(user)
    # Under the session's secret path, which the session's own proxy serves.
    assert re.search(rf"DASHBOARD /user/{user}/proxy/work-scheduler.{ns}:8787/[0-9a-f]{{32}}"
                     "/status", out), out
    assert "PROXIED 200" in out and "REFUSED 403" in out
    owners = json.loads(kubectl("-n", ns, "get", "daskcluster", "work", "-o",
                                "jsonpath={.metadata.ownerReferences}"))
    assert [o["name"] for o in owners] == [session_pod(user)["metadata"]["name"]]


@pytest.fixture(scope="module")
def bob(hub, built) -> Launch:
    """A second badge click: another temporary user, a stranger to Alice."""
    launch = hub.launch(built[0], Launcher.unique_name())
    yield launch
    if hub.request("GET", f"users/{launch.username}")[0] == 200:
        stop(hub, launch.username)


def test_a_second_user_cannot_touch_the_first_users_cluster(hub, alice, bob):
    ns = namespace_of(alice.username)
    paths = {"daskclusters": f"/apis/kubernetes.dask.org/v1/namespaces/{ns}/daskclusters",
             "pods": f"/api/v1/namespaces/{ns}/pods",
             "secrets": f"/api/v1/namespaces/{ns}/secrets"}
    secret = kubectl("-n", ns, "get", "secrets", "-o", "jsonpath={.items[0].metadata.name}")
    names = {"daskclusters": "work", "pods": session_pod(alice.username)["metadata"]["name"],
             "secrets": secret}
    out = in_server(bob.username, isolation_probe(paths, names, namespace_of(bob.username)),
                    "unused")
    results = json.loads(out.strip().splitlines()[-1])
    assert results.pop("own daskclusters") == 200
    assert results == {key: 403 for key in results}, results
    assert "work" in kubectl("-n", ns, "get", "daskclusters", "-o", "name")
    # Nor can Bob's browser open Alice's server with his own launch token.
    assert not opens_jupyterlab(Browser().get(f"{alice.url}?token={bob.token}"))


def test_a_second_user_cannot_use_the_first_users_scheduler(hub, alice, bob):
    """From Bob's session, Alice's running scheduler: its Dask port in plain TCP, with
    Bob's own credentials and with a certificate of his making, and its HTTP port
    (dashboard and API: her call stacks, retiring her workers), which any pod reaches
    where NetworkPolicy is not enforced."""
    ns = namespace_of(alice.username)
    workers = dask_pods(ns, "worker")
    assert workers, "the 'work' cluster of an earlier test should be running"
    out = in_server(bob.username, INTRUDER_PROBE.format(namespace=ns), "unused")
    results = json.loads(out.strip().splitlines()[-1])
    assert len(results) == 3 and all(r.startswith("REFUSED") for r in results.values()), \
        results
    out = in_server(bob.username, HTTP_INTRUDER_PROBE.format(namespace=ns), "unused")
    assert set(json.loads(out.strip().splitlines()[-1]).values()) == {404}, out
    assert dask_pods(ns, "worker") == workers  # none retired
    # Alice's own session reaches it, under the path it was given.
    out = in_server(alice.username, HTTP_OWNER_PROBE.format(namespace=ns), alice.token)
    assert json.loads(out.strip().splitlines()[-1]) == {"health": 200,
                                                       "identity": "Scheduler"}


def test_a_session_cannot_escape_through_its_own_dask_objects(hub, bob):
    """From Bob's session, with its ServiceAccount token: Dask objects whose pods would
    leave the session's bounds (privileged, host paths or namespaces, a chosen node,
    another image, a priority class, tolerations, a gitRepo volume, root, unconfined
    seccomp or AppArmor, the session's label, Dask's TLS off), a scheduler reachable
    from outside the cluster, a privileged DaskJob, a reserved label added by a
    metadata-only patch, and the worker cap passed at creation, through the scale
    subresource or with added worker groups."""
    ns = namespace_of(bob.username)
    try:
        assert allowlist_results(in_server(bob.username, ALLOWLIST_PROBE, "unused")) == {}
        made = kubectl("-n", ns, "get", "pods,daskclusters,daskjobs,services", "-o", "name")
        assert "escape-" not in made, made
        assert kubectl("-n", ns, "get", "daskworkergroup", "ok-default", "-o",
                       "jsonpath={.spec.worker.replicas}") == "1"
    finally:
        kubectl("-n", ns, "delete", "daskclusters,daskworkergroups", "--all", "--wait=false")


def stop(hub: Launcher, user: str) -> None:
    """Stop the user's server as BinderHub's culler does, then delete the temporary user."""
    status, _ = hub.request("DELETE", f"users/{user}/server")
    assert status in (202, 204), status
    wait_until(lambda: not hub.request("GET", f"users/{user}")[1].get("servers"), 120,
               f"{user}'s server stopped")
    assert hub.request("DELETE", f"users/{user}")[0] == 204


@pytest.fixture
def launch_quota(monkeypatch):
    """pangeo-binder's BinderHub quota and health classes, on a stand-in of the BinderHub
    modules they extend (BinderHub is not installable here), speaking to the dev
    cluster's API server as BinderHub would from its pod."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent / "binderhub_standin"))
    from binderhub.quota import LaunchQuotaExceeded

    from pangeo_binder.hub.launch_quota import SessionHealthHandler, SessionLaunchQuota

    executor = ThreadPoolExecutor(2)
    yield SessionLaunchQuota, SessionHealthHandler, LaunchQuotaExceeded, executor
    executor.shutdown()


def test_a_full_launch_quota_refuses_the_next_launch(hub, alice, bob, built, launch_quota):
    quota_class, health_class, exceeded, executor = launch_quota
    image = built[0]

    def check(total=None, repo=None):
        # What BinderHub's build handler asks before it launches anything.
        quota = quota_class(executor=executor, total_quota=total)
        return asyncio.run(quota.check_repo_quota(image, {"quota": repo} if repo else {},
                                                  REPO_URL))

    assert check() is None  # no quota set: nothing is counted
    running = check(total=3)
    assert (running.total, running.matching) == (2, 2)  # Alice's and Bob's sessions
    with pytest.raises(exceeded) as full:  # they fill a quota of 2
        check(total=2)
    assert (full.value.status, full.value.used) == ("pod_quota", 2)
    # A repository's own quota counts the sessions of its image only.
    with pytest.raises(exceeded) as repo_full:
        check(total=10, repo=2)
    assert repo_full.value.status == "repo_quota"
    assert check(total=10, repo=3).matching == 2
    # /health's pod count sees the same sessions, in their own namespaces.
    builder = SimpleNamespace(api=quota_class(executor=executor).api, namespace=BUILDS)
    health = health_class({"example_builder": builder, "executor": executor})
    sessions, _ = asyncio.run(health._get_pods())
    assert {pod["metadata"]["namespace"] for pod in sessions} == {
        namespace_of(alice.username), namespace_of(bob.username)}
    stop(hub, bob.username)
    assert check(total=2).total == 1


def test_stopping_a_server_removes_its_dask_cluster_and_namespace(hub, alice):
    ns = namespace_of(alice.username)
    assert dask_pods(ns), "the 'work' cluster of an earlier test should be running"
    stop(hub, alice.username)
    # Seconds: the operator policy deletes a gone session's Dask pods at once, and the
    # hub deletes the namespace with everything in it (RBAC, quota, credentials).
    wait_until(lambda: not dask_leftovers(ns), 120, "Alice's Dask cluster is still there", ns)
    wait_until(lambda: ns not in hub_namespaces(), 180, "Alice's namespace is still there")


def test_ten_badge_clicks_leave_nothing_behind(hub, built):
    """Temporary users come and go as on a public binder: each click a new user, a
    server, JupyterLab opened, then the culler stops the server and deletes the user."""
    before = leftovers()
    namespaces = []
    for _ in range(10):
        launch = hub.launch(built[0], Launcher.unique_name())
        assert opens_jupyterlab(Browser().get(f"{launch.url}?token={launch.token}"))
        namespaces.append(namespace_of(launch.username))
        stop(hub, launch.username)
    wait_until(lambda: not set(namespaces) & set(hub_namespaces()), 300,
               "the users' namespaces are gone")
    assert leftovers() == before
    assert hub.request("GET", "users")[1] == []


def leftovers() -> set[str]:
    """Every object in the cluster that carries a pangeo-binder user label."""
    kinds = ("namespaces,clusterroles,clusterrolebindings,persistentvolumes,"
             "pods,serviceaccounts,secrets,roles,rolebindings,resourcequotas,services,"
             "networkpolicies,daskclusters")
    out = kubectl("get", kinds, "--all-namespaces", "-l", "pangeo-binder/user", "-o",
                  "jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/"
                  "{.metadata.name}{'\\n'}{end}")
    return {line for line in out.splitlines() if line}


def test_a_spawn_may_not_choose_an_image_outside_the_allowed_prefixes(hub):
    mallory = Launcher.unique_name()
    with pytest.raises(LaunchFailed):
        hub.launch("docker.io/library/busybox:latest", mallory)
    assert not hub.request("GET", f"users/{mallory}")[1].get("servers")
    pods = kubectl("get", "pods", "--all-namespaces", "-l",
                   f"pangeo-binder/user={user_slug(mallory)}", "-o", "name")
    assert pods.strip() == ""
    assert kubectl("get", "namespaces", "-l", f"pangeo-binder/user={user_slug(mallory)}",
                   "-o", "name") == ""


def test_a_spawn_without_a_launch_token_is_refused(hub, built):
    """On a hub without login a server without the launcher's token would be open to
    whoever finds it (or, with a token nobody was given, to nobody)."""
    user = Launcher.unique_name()
    hub.request("POST", f"users/{user}")
    status, _ = hub.request("POST", f"users/{user}/servers/", {"image": built[0]})
    if status in (201, 202):
        wait_until(lambda: not hub.request("GET", f"users/{user}")[1]
                   .get("servers", {}).get("", {}).get("pending"), 60, "the spawn ended")
    assert not hub.request("GET", f"users/{user}")[1].get("servers")
    assert kubectl("get", "pods", "--all-namespaces", "-l",
                   f"pangeo-binder/user={user_slug(user)}", "-o", "name") == ""
