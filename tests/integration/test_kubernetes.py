"""Sessions on the real dev cluster (deploy/dev-cluster) with the real Dask operator.

Everything a user would notice: launching, a Dask cluster that computes from inside the
session, isolation between users proven against the API server, cleanup by garbage
collection after a forced delete, caps, and stop.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from tests.helpers.cli import EXAMPLES, run_cli
from tests.helpers.k8s import (
    dask_leftovers,
    dask_pods,
    isolation_probe,
    kubecluster_probe,
    kubectl,
    wait_until,
)
from tests.helpers.session_attacks import (
    ALLOWLIST_PROBE,
    HTTP_INTRUDER_PROBE,
    HTTP_OWNER_PROBE,
    INTRUDER_PROBE,
    allowlist_results,
)

RUN = uuid.uuid4().hex[:6]
ALICE, BOB = f"alice-{RUN}", f"bob-{RUN}"
# Small enough for a 2-core dev machine: session + scheduler + 2 workers.
CAPS = ["--max-workers", "2", "--worker-cores", "200m", "--worker-memory", "768Mi",
        "--session-cores", "300m", "--session-memory", "1Gi"]


def in_session(user: str, script: str) -> str:
    """Run Python in the user's session pod, as the user's notebook would."""
    ns = f"pangeo-{user}"
    return kubectl("-n", ns, "exec", "-i", f"pangeo-{user}-session", "--", "python", "-",
                   stdin="import warnings; warnings.simplefilter('ignore')\n" + script)


@pytest.fixture(scope="module")
def cluster(docker_engine, dev_cluster):
    yield
    for user in (ALICE, BOB):
        run_cli("stop", "--kubernetes", "--user", user)


@pytest.fixture(scope="module")
def image(cluster) -> str:
    result = run_cli("build", str(EXAMPLES / "quickstart"))
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def launch(image: str, user: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("launch", image, "--kubernetes", "--user", user, *CAPS, *extra)


@pytest.fixture(scope="module")
def alice(image) -> str:
    result = launch(image, ALICE)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


@pytest.fixture(scope="module")
def bob(image) -> str:
    result = launch(image, BOB)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_launch_creates_a_locked_down_session(alice, image):
    ns = f"pangeo-{ALICE}"
    pod = json.loads(kubectl("-n", ns, "get", "pod", f"pangeo-{ALICE}-session", "-o", "json"))
    assert pod["spec"]["securityContext"]["runAsUser"] == 1000
    container = pod["spec"]["containers"][0]
    assert container["image"] == image
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["limits"] == {"cpu": "300m", "memory": "1Gi"}
    assert pod["metadata"]["labels"]["pangeo-binder/user"] == ALICE
    assert pod["metadata"]["labels"]["app.kubernetes.io/part-of"] == "pangeo-binder"
    assert "port-forward service/" in alice and "token=" in alice
    # Reaching it the way launch says: port-forward to the Service, then the token.
    token = alice.rsplit("token=", 1)[1]
    forward = subprocess.Popen(["kubectl", "-n", ns, "port-forward",
                                f"service/pangeo-{ALICE}-session", ":80"],
                               stdout=subprocess.PIPE, text=True)
    try:
        line = forward.stdout.readline()  # "Forwarding from 127.0.0.1:PORT -> 8888"
        port = line.split("127.0.0.1:")[1].split()[0]
        url = f"http://127.0.0.1:{port}/api/status?token={token}"
        with urllib.request.urlopen(url, timeout=30) as answer:
            assert answer.status == 200
        with pytest.raises(urllib.error.HTTPError):  # no token, no entry
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=30)
    finally:
        forward.kill()


def test_launching_twice_finds_the_first_session(alice, image):
    uid = kubectl("-n", f"pangeo-{ALICE}", "get", "pod", f"pangeo-{ALICE}-session",
                  "-o", "jsonpath={.metadata.uid}")
    again = launch(image, ALICE)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == alice  # same token, same way in
    assert "Found the session" in again.stderr
    assert kubectl("-n", f"pangeo-{ALICE}", "get", "pod", f"pangeo-{ALICE}-session",
                   "-o", "jsonpath={.metadata.uid}") == uid


def test_workers_beyond_the_cap_are_refused_by_the_api_server(alice):
    out = in_session(ALICE, """
from dask_kubernetes.operator import KubeCluster
try:
    KubeCluster(name="big", n_workers=5)
except Exception as error:
    print("REFUSED", error)
cluster = KubeCluster(name="small", n_workers=1)
try:
    cluster.scale(7)
except Exception as error:
    print("SCALE REFUSED", error)
cluster.scale(2)  # within the cap
cluster.close()
""")
    ns = f"pangeo-{ALICE}"
    assert "more than its cap of 2" in out.split("REFUSED", 1)[1].splitlines()[0], out
    assert "7 workers in all of this session's Dask clusters is more than its cap of 2" in \
        out.split("SCALE REFUSED", 1)[1].splitlines()[0], out
    assert "big" not in kubectl("-n", ns, "get", "daskclusters", "-o", "name")
    quota = kubectl("-n", ns, "get", "resourcequota", f"pangeo-{ALICE}-caps", "-o",
                    "jsonpath={.spec.hard.pods}")
    assert quota == "4"  # session + scheduler + 2 workers, enforced by the API server
    # The script's end closed the cluster: its pods go, freeing the quota.
    wait_until(lambda: not dask_pods(ns), 90, "the closed cluster's pods are still there", ns)


def test_kubecluster_computes_in_the_users_namespace_owned_by_the_session(alice):
    out = in_session(ALICE, kubecluster_probe("JUPYTER_TOKEN"))
    assert "SUM 4000000.0" in out
    assert f"ADDRESS tls://work-scheduler.pangeo-{ALICE}:8786" in out  # over TLS
    assert "VERSIONS 1" in out
    # Under the session's secret path, which the session's own proxy serves.
    assert re.search(rf"DASHBOARD /proxy/work-scheduler.pangeo-{ALICE}:8787/[0-9a-f]{{32}}/status",
                     out), out
    # The dashboard is served through jupyter-server-proxy; other hosts are not.
    assert "PROXIED 200" in out and "REFUSED 403" in out
    owners = json.loads(kubectl("-n", f"pangeo-{ALICE}", "get", "daskcluster", "work", "-o",
                                "jsonpath={.metadata.ownerReferences}"))
    assert [(o["kind"], o["name"]) for o in owners] == [("Pod", f"pangeo-{ALICE}-session")]


def test_another_user_gets_403_on_everything_of_the_first(alice, bob):
    ns = f"pangeo-{ALICE}"
    paths = {
        "daskclusters": f"/apis/kubernetes.dask.org/v1/namespaces/{ns}/daskclusters",
        "pods": f"/api/v1/namespaces/{ns}/pods",
        "secrets": f"/api/v1/namespaces/{ns}/secrets",
    }
    names = {"daskclusters": "work", "pods": f"pangeo-{ALICE}-session",
             "secrets": f"pangeo-{ALICE}-token"}
    # Bob's own ServiceAccount token, from inside Bob's session, straight to the API server.
    out = in_session(BOB, isolation_probe(paths, names, f"pangeo-{BOB}"))
    results = json.loads(out.strip().splitlines()[-1])
    assert results.pop("own daskclusters") == 200  # the token works where it should
    assert results == {key: 403 for key in results}, results
    assert len(results) == 12
    assert "work" in kubectl("-n", ns, "get", "daskclusters", "-o", "name")


def test_an_idle_cluster_removes_itself(bob):
    """The operator checks idleness through the scheduler's HTTP API: TLS on the Dask
    port must not keep it from removing an idle cluster. Left idle for a 60 s timeout,
    the cluster and its pods are gone within 90 s: the scheduler's idle clock starts at
    the operator's first look (every 5 s), the operator deletes the cluster at its next
    look after the timeout, and its pods go without grace."""
    ns = f"pangeo-{BOB}"
    out = in_session(BOB, """
from dask_kubernetes.operator import KubeCluster
cluster = KubeCluster(name="idle", n_workers=1, idle_timeout=60, shutdown_on_close=False)
print("UP", cluster.scheduler_address)
""")
    idle_from = time.monotonic()
    assert f"UP tls://idle-scheduler.{ns}:8786" in out  # it ran, over TLS
    wait_until(lambda: "idle" not in kubectl("-n", ns, "get", "daskclusters", "-o", "name")
               and not dask_pods(ns), 120, "the idle cluster is still there", ns)
    assert time.monotonic() - idle_from < 90


MALLORY = f"mallory-{RUN}"


@pytest.fixture(scope="module")
def mallory(image) -> str:
    result = launch(image, MALLORY)
    assert result.returncode == 0, result.stderr[-3000:]
    yield result.stdout.strip()
    run_cli("stop", "--kubernetes", "--user", MALLORY)


PSA_LABEL = "pod-security.kubernetes.io/enforce"


def privileged_pods_allowed(ns: str) -> bool:
    """Whether the dev cluster's pod policy lets this namespace's pods be privileged
    (deploy/dev-cluster/psp-sync binds that where the namespace is not restricted)."""
    return "dev-cluster-privileged-pods" in kubectl("-n", ns, "get", "rolebindings", "-o",
                                                    "name")


def test_admission_is_an_allow_list_for_every_change(mallory):
    ns = f"pangeo-{MALLORY}"
    # The webhook must hold alone: the cluster's own pod policy is turned off here (the
    # namespace loses its Pod Security label, so the dev cluster allows any pod in it).
    kubectl("label", "namespace", ns, f"{PSA_LABEL}-")
    try:
        wait_until(lambda: privileged_pods_allowed(ns), 30, "the pod policy stayed on", ns)
        assert allowlist_results(in_session(MALLORY, ALLOWLIST_PROBE)) == {}
        made = kubectl("-n", ns, "get", "pods,daskclusters,daskjobs,services", "-o", "name")
        assert "escape-" not in made, made
        replicas = kubectl("-n", ns, "get", "daskworkergroup", "ok-default", "-o",
                           "jsonpath={.spec.worker.replicas}")
        assert replicas == "1"
    finally:
        kubectl("label", "namespace", ns, f"{PSA_LABEL}=restricted", "--overwrite")
        kubectl("-n", ns, "delete", "daskclusters,daskworkergroups", "--all", "--wait=false")


def test_the_cluster_itself_admits_only_restricted_pods_in_a_session_namespace(mallory):
    # As a managed cluster's Pod Security Admission would, whoever makes the pod: here
    # the session's own ServiceAccount, given the right to make pods for the test, asks
    # for a privileged one. The cluster's pod policy refuses it before any webhook.
    ns, account = f"pangeo-{MALLORY}", f"pangeo-{MALLORY}"
    wait_until(lambda: not privileged_pods_allowed(ns), 30, "the pod policy is off", ns)
    kubectl("-n", ns, "create", "role", "test-pod-maker", "--verb=create", "--resource=pods")
    kubectl("-n", ns, "create", "rolebinding", "test-pod-maker", "--role=test-pod-maker",
            f"--serviceaccount={ns}:{account}")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "test-privileged"},
           "spec": {"containers": [{"name": "c", "image": "k8s.gcr.io/pause:3.2",
                                    "securityContext": {"privileged": True}}]}}
    try:
        result = subprocess.run(
            ["kubectl", "-n", ns, "create", f"--as=system:serviceaccount:{ns}:{account}",
             "-f", "-"], input=json.dumps(pod), capture_output=True, text=True, check=False)
        assert result.returncode != 0
        assert "PodSecurityPolicy: unable to admit pod" in result.stderr, \
            result.stderr
        assert "Privileged containers are not allowed" in result.stderr
    finally:
        kubectl("-n", ns, "delete", "rolebinding,role", "test-pod-maker", check=False)
        kubectl("-n", ns, "delete", "pod", "test-privileged", "--ignore-not-found", check=False)


def test_another_user_cannot_reach_the_first_users_dask_cluster(alice, bob):
    ns = f"pangeo-{ALICE}"
    workers = kubectl("-n", ns, "get", "pods", "-l", "dask.org/component=worker", "-o",
                      "name").split()
    assert workers, "alice's 'work' cluster of an earlier test should be running"
    out = in_session(BOB, INTRUDER_PROBE.format(namespace=ns))
    results = json.loads(out.strip().splitlines()[-1])
    assert set(results) == {"plain tcp", "tls, bob's credentials",
                            "tls, a certificate of bob's own"}
    assert all(r.startswith("REFUSED") for r in results.values()), results
    for worker in workers:
        assert kubectl("-n", ns, "exec", worker.split("/")[1], "--", "ls", "/tmp",
                       check=False).find("intruder-was-here") == -1


def test_another_user_cannot_use_the_first_users_scheduler_over_http(alice, bob):
    ns = f"pangeo-{ALICE}"
    workers = kubectl("-n", ns, "get", "pods", "-l", "dask.org/component=worker", "-o",
                      "name").split()
    assert workers, "alice's 'work' cluster of an earlier test should be running"
    results = json.loads(in_session(BOB, HTTP_INTRUDER_PROBE.format(namespace=ns))
                         .strip().splitlines()[-1])
    assert set(results.values()) == {404}, results
    assert kubectl("-n", ns, "get", "pods", "-l", "dask.org/component=worker", "-o",
                   "name").split() == workers  # none retired
    mine = json.loads(in_session(ALICE, HTTP_OWNER_PROBE.format(namespace=ns))
                      .strip().splitlines()[-1])
    assert mine == {"health": 200, "identity": "Scheduler"}


# A scheduler of bob's own that answers the operator's questions with lies: its idle
# check fails (where upstream falls back to Dask RPC and unpickles the answer), and its
# retire_workers names alice's session pod as a path. Scaling bob's own cluster down must
# retire only bob's workers.
HOSTILE_SCHEDULER = r"""
import http.server, json, os
victim = os.environ["VICTIM"]
class Lies(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_error(500)
    def do_POST(self):
        body = json.dumps({victim: {"name": victim, "id": victim}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("", 8787), Lies).serve_forever()
"""
HOSTILE_PROBE = """
import json, os
from dask_kubernetes.operator import make_cluster_spec
from kr8s.objects import new_class
ns, image = os.environ["DASK_KUBERNETES__NAMESPACE"], os.environ["DASK_KUBERNETES__IMAGE"]
spec = make_cluster_spec(name="liar", image=image, n_workers=1)
scheduler = spec["spec"]["scheduler"]["spec"]["containers"][0]
scheduler.update(command=["python", "-c", {server!r}], args=[],
                 env=[{{"name": "VICTIM", "value": {victim!r}}}])
new_class("DaskCluster", "kubernetes.dask.org/v1")(spec, namespace=ns).create()
print("CREATED")
"""


def test_a_hostile_scheduler_cannot_make_the_operator_delete_what_is_not_its_own(alice, bob):
    ns, victim_ns = f"pangeo-{BOB}", f"pangeo-{ALICE}"
    session = f"pangeo-{ALICE}-session"
    uid = kubectl("-n", victim_ns, "get", "pod", session, "-o", "jsonpath={.metadata.uid}")
    victim = f"../../../../../../api/v1/namespaces/{victim_ns}/pods/{session}"
    try:
        assert "CREATED" in in_session(BOB, HOSTILE_PROBE.format(
            server=HOSTILE_SCHEDULER, victim=victim))
        wait_until(lambda: kubectl("-n", ns, "get", "deployments", "-l",
                                   "dask.org/component=worker", "-o", "name").strip(),
                   180, "bob's worker Deployment did not appear", ns)
        wait_until(lambda: "Running" in kubectl("-n", ns, "get", "pods", "-l",
                                                 "dask.org/component=scheduler", "-o",
                                                 "jsonpath={.items[*].status.phase}"),
                   180, "the lying scheduler did not start", ns)
        kubectl("-n", ns, "patch", "daskworkergroup", "liar-default", "--type", "merge",
                "-p", json.dumps({"spec": {"worker": {"replicas": 0}}}))
        # Bob's own worker goes; alice's session stays the pod it was.
        wait_until(lambda: not kubectl("-n", ns, "get", "deployments", "-l",
                                       "dask.org/component=worker", "-o", "name").strip(),
                   120, "bob's worker was not retired", ns)
        assert kubectl("-n", victim_ns, "get", "pod", session, "-o",
                       "jsonpath={.metadata.uid}") == uid
    finally:
        kubectl("-n", ns, "delete", "daskclusters", "liar", "--wait=false", check=False)


# A DaskJob made from inside the session: a runner that prints and ends, on a cluster of
# its own with no workers (none of the cap).
JOB_PROBE = """
import copy, os
from dask_kubernetes.operator import make_cluster_spec
from kr8s.objects import new_class
ns, image = os.environ["DASK_KUBERNETES__NAMESPACE"], os.environ["DASK_KUBERNETES__IMAGE"]
runner = copy.deepcopy(make_cluster_spec(name="x", image=image)["spec"]["scheduler"]["spec"])
container = runner["containers"][0]
container.update(name="runner", command=["python", "-c", "print('the job ran')"], args=[])
container.pop("readinessProbe", None); container.pop("livenessProbe", None)
container.pop("ports", None)
DaskJob = new_class("DaskJob", "kubernetes.dask.org/v1")
DaskJob({"metadata": {"name": "report"}, "spec": {
    "job": {"spec": runner},
    "cluster": {"spec": make_cluster_spec(name="x", image=image, n_workers=0)["spec"]}}},
    namespace=ns).create()
print("CREATED")
"""


def test_a_dask_job_runs_to_its_end_and_takes_its_cluster_with_it(bob):
    """The operator follows a DaskJob's runner without watching pods across the
    cluster: the job ends Successful and its cluster goes."""
    ns = f"pangeo-{BOB}"
    try:
        assert "CREATED" in in_session(BOB, JOB_PROBE)
        wait_until(lambda: kubectl("-n", ns, "get", "daskjob", "report", "-o",
                                   "jsonpath={.status.jobStatus}") == "Successful",
                   240, "the DaskJob did not end Successful", ns)
        runner = kubectl("-n", ns, "get", "pods", "-l", "dask.org/component=job-runner",
                         "-o", "name").split()
        assert "the job ran" in kubectl("-n", ns, "logs", runner[0])
        wait_until(lambda: "report" not in kubectl("-n", ns, "get", "daskclusters", "-o",
                                                   "name"),
                   60, "the job's cluster is still there", ns)
    finally:
        kubectl("-n", ns, "delete", "daskjobs", "--all", "--wait=false", check=False)


OPERATOR_ACCOUNT = "system:serviceaccount:dask-operator:dask-operator"
HUB_RIGHTS_ACCOUNT = "system:serviceaccount:dask-operator:pangeo-binder-hub-rights"


def operator_can(verb: str, resource: str, namespace: str | None = None,
                 account: str = OPERATOR_ACCOUNT) -> bool:
    where = ["-n", namespace] if namespace else ["--all-namespaces"]
    answer = kubectl("auth", "can-i", verb, resource, "--as", account, *where, check=False)
    return answer.strip() == "yes"


def test_the_operator_holds_pod_rights_only_in_session_namespaces(alice, bob):
    """Were a scheduler ever to make the operator act for it, the operator could reach
    no pod, Service, Deployment or Secret outside a session namespace: it holds no such
    right cluster-wide, nor can it bind itself one; each session binds them in its own
    namespace. And it still watches everything it needs: no watcher failed."""
    sessions = (f"pangeo-{ALICE}", f"pangeo-{BOB}")
    for verb, resource in [("list", "pods"), ("watch", "services"), ("create", "pods"),
                           ("delete", "pods"), ("patch", "deployments"),
                           ("create", "deployments"), ("get", "secrets")]:
        assert not operator_can(verb, resource), (verb, resource)
        for namespace in ("default", "kube-system", "dask-operator"):
            assert not operator_can(verb, resource, namespace), (verb, resource, namespace)
        if resource != "secrets":
            assert all(operator_can(verb, resource, ns) for ns in sessions), (verb, resource)
    for ns in sessions:
        assert operator_can("get", "secrets/pangeo-binder-dask-tls", ns)
        assert not operator_can("get", "secrets/other", ns)
    assert not operator_can("bind", "clusterroles/pangeo-binder-dask-operator-session")
    # Nor may it bind a hub's session role (pods and Secrets) anywhere: that is the
    # hub-rights process's one right, and that process talks to no scheduler.
    for namespace in (None, "kube-system", *sessions):
        assert not operator_can("create", "rolebindings", namespace), namespace
    assert not operator_can("bind", "clusterroles/pangeo-binder-hub-session")
    assert operator_can("bind", "clusterroles/pangeo-binder-hub-session",
                        account=HUB_RIGHTS_ACCOUNT)
    for verb, resource in [("list", "pods"), ("get", "secrets"), ("create", "pods"),
                           ("patch", "daskclusters.kubernetes.dask.org"),
                           ("patch", "namespaces"), ("create", "roles"),
                           ("bind", "clusterroles/cluster-admin"),
                           ("bind", "clusterroles/pangeo-binder-dask-operator-session")]:
        assert not operator_can(verb, resource, account=HUB_RIGHTS_ACCOUNT), (verb, resource)
    log = kubectl("-n", "dask-operator", "logs", "deployment/dask-operator")
    assert "Watcher for" not in log, log[-3000:]  # a watch it may not make, failed
    refused = [line for line in log.splitlines()
               if ("HTTP/1.1 403" in line or "is forbidden" in line)
               and any(f"namespaces/{ns}/" in line or f"namespace \"{ns}\"" in line
                       for ns in sessions)]
    assert not refused, refused[:5]


def test_forced_delete_of_the_session_removes_its_dask_cluster(alice):
    ns = f"pangeo-{ALICE}"
    assert dask_pods(ns), "the 'work' cluster of an earlier test should be running"
    kubectl("-n", ns, "delete", "pod", f"pangeo-{ALICE}-session", "--grace-period=0",
            "--force", "--wait=false")
    # Under kopf's default a DaskCluster whose timer was mid-run kept its finalizer a
    # minute; the policy's polling makes that a second (30 s: room for a busy node).
    wait_until(lambda: not dask_leftovers(ns), 30, "the Dask cluster is still there", ns)


def test_ten_launch_and_kill_cycles_leave_no_orphans(image):
    user = f"cycles-{RUN}"
    ns = f"pangeo-{user}"
    try:
        for cycle in range(10):
            # Room in the quota for the pods of earlier cycles that are still terminating.
            result = launch(image, user, "--max-workers", "8")
            assert result.returncode == 0, f"cycle {cycle}: {result.stderr[-2000:]}"
            in_session(user, f"""
from dask_kubernetes.operator import make_cluster_spec
from kr8s.objects import new_class
import os
DaskCluster = new_class("DaskCluster", "kubernetes.dask.org/v1")
spec = make_cluster_spec(name="c{cycle}", image=os.environ["DASK_KUBERNETES__IMAGE"],
                         n_workers=1)
spec["spec"]["worker"]["spec"]["terminationGracePeriodSeconds"] = 5
spec["spec"]["scheduler"]["spec"]["terminationGracePeriodSeconds"] = 5
DaskCluster(spec, namespace=os.environ["DASK_KUBERNETES__NAMESPACE"]).create()
""")
            name = f"c{cycle}"
            wait_until(lambda name=name: kubectl("-n", ns, "get", "daskcluster", name, "-o",
                                                 "jsonpath={.metadata.ownerReferences}",
                                                 check=False),
                       30, f"cycle {cycle}: cluster not owned by the session")
            kubectl("-n", ns, "delete", "pod", f"pangeo-{user}-session", "--grace-period=0",
                    "--force", "--wait=false")
        # No time bound is promised here (the forced-delete test holds 60 s for one
        # cluster); ten at once on two cores take a while to cascade and terminate.
        left = ""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            left = kubectl("-n", ns, "get", "daskclusters,daskworkergroups,deployments,pods",
                           "-l", "dask.org/cluster-name", "-o", "name").split()
            left += kubectl("-n", ns, "get", "daskclusters", "-o", "name").split()
            if not left:
                break
            time.sleep(2)
        assert not left, f"orphans after ten launch-and-kill cycles: {left}"
    finally:
        run_cli("stop", "--kubernetes", "--user", user)


def test_a_session_namespace_deleted_with_its_dask_cluster_in_it_goes(image):
    """As a cluster admin or a hub deletes it: the session's RoleBinding goes first, so
    the operator loses its rights there while the DaskCluster still holds its finalizer.
    The namespace used to stay Terminating, the finalizer's release refused."""
    user = f"deleted-{RUN}"
    ns = f"pangeo-{user}"
    try:
        result = launch(image, user)
        assert result.returncode == 0, result.stderr[-2000:]
        in_session(user, """
from dask_kubernetes.operator import make_cluster_spec
from kr8s.objects import new_class
import os
DaskCluster = new_class("DaskCluster", "kubernetes.dask.org/v1")
spec = make_cluster_spec(name="c", image=os.environ["DASK_KUBERNETES__IMAGE"], n_workers=1)
DaskCluster(spec, namespace=os.environ["DASK_KUBERNETES__NAMESPACE"]).create()
""")
        wait_until(lambda: dask_pods(ns, "scheduler"), 60, "no scheduler pod", ns)
        kubectl("delete", "namespace", ns, "--wait=false")
        wait_until(lambda: not kubectl("get", "namespace", ns, "--ignore-not-found"), 120,
                   "the namespace is still there", ns)
    finally:
        run_cli("stop", "--kubernetes", "--user", user)


def test_stop_removes_the_session_and_everything_it_made(alice):
    result = run_cli("stop", "--kubernetes", "--user", BOB)
    assert result.returncode == 0, result.stderr
    assert kubectl("get", "namespace", f"pangeo-{BOB}", check=False) == ""
    assert kubectl("get", "all,serviceaccounts,roles,rolebindings,secrets,daskclusters",
                   "-A", "-l", f"pangeo-binder/user={BOB}", "-o", "name") == ""


def test_names_alike_get_sessions_of_their_own(image):
    """`a.b`, `a-b` and `a_b` were one DNS name, so one namespace: the second was handed
    the first's session and token, and stopping the third stopped the first."""
    dotted, dashed, underscored = f"nb.{RUN}", f"nb-{RUN}", f"nb_{RUN}"
    try:
        first, second = launch(image, dotted), launch(image, dashed)
        assert first.returncode == 0, first.stderr[-2000:]
        assert second.returncode == 0, second.stderr[-2000:]
        assert "Found the session" not in second.stderr
        ways_in = [result.stdout.strip() for result in (first, second)]
        tokens = {way.rsplit("token=", 1)[1] for way in ways_in}
        namespaces = [way.split("kubectl -n ", 1)[1].split()[0] for way in ways_in]
        assert len(tokens) == 2 and len(set(namespaces)) == 2, ways_in
        assert namespaces[1] == f"pangeo-{dashed}"  # an already safe name is kept
        for user, ns in zip((dotted, dashed), namespaces, strict=True):
            found = json.loads(kubectl("get", "namespace", ns, "-o", "json"))["metadata"]
            assert found["annotations"]["pangeo-binder/user-name"] == user
        pods = {ns: kubectl("-n", ns, "get", "pods", "-l", "app.kubernetes.io/component=session",
                            "-o", "jsonpath={.items[*].metadata.uid}") for ns in namespaces}
        assert all(pods.values()), pods

        stopped = run_cli("stop", "--kubernetes", "--user", underscored)
        assert stopped.returncode == 0, stopped.stderr
        assert "has no session" in stopped.stderr
        for ns, uid in pods.items():  # both sessions untouched
            assert kubectl("-n", ns, "get", "pods", "-l", "app.kubernetes.io/component=session",
                           "-o", "jsonpath={.items[*].metadata.uid}") == uid
    finally:
        for user in (dotted, dashed):
            run_cli("stop", "--kubernetes", "--user", user)


def test_awkward_user_names_get_sessions_and_stop_removes_them(image):
    """Names YAML would read as a number, null or a boolean, or that hold its syntax,
    as an authenticator may let them through: the API server takes every object made
    for them, each gets a namespace of its own that keeps the exact name, and `stop`
    removes it. One at a time, as a small dev cluster holds them."""
    users = [str(int(RUN, 16)), "null", "true", f"a: b#{RUN}"]
    namespaces = set()
    try:
        for user in users:
            result = launch(image, user)
            assert result.returncode == 0, (user, result.stderr[-2000:])
            ns = result.stdout.split("kubectl -n ", 1)[1].split()[0]
            namespaces.add(ns)
            found = json.loads(kubectl("get", "namespace", ns, "-o", "json"))["metadata"]
            assert found["annotations"]["pangeo-binder/user-name"] == user
            assert ns == f"pangeo-{found['labels']['pangeo-binder/user']}"
            [pod] = json.loads(kubectl("-n", ns, "get", "pods", "-l",
                                       "app.kubernetes.io/component=session",
                                       "-o", "json"))["items"]
            assert pod["metadata"]["annotations"]["pangeo-binder/user-name"] == user
            assert pod["metadata"]["labels"]["pangeo-binder/user"] == \
                found["labels"]["pangeo-binder/user"]

            stopped = run_cli("stop", "--kubernetes", "--user", user)
            assert stopped.returncode == 0, (user, stopped.stderr)
            assert kubectl("get", "namespace", ns, "--ignore-not-found") == ""
        assert len(namespaces) == len(users)
    finally:
        for user in users:
            run_cli("stop", "--kubernetes", "--user", user)


def test_an_image_that_cannot_start_leaves_nothing_behind(cluster):
    user = f"carol-{RUN}"
    result = run_cli("launch", f"pangeo-binder-test-missing/nothing:{RUN}", "--kubernetes",
                     "--user", user, *CAPS, "--timeout", "120")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "the session cannot start" in result.stderr.strip().splitlines()[-1]
    wait_until(lambda: kubectl("get", "namespace", f"pangeo-{user}", check=False) == "",
               60, "the failed session's namespace is still there")


def test_local_launch_serves_jupyterlab_with_a_token(image, docker_engine):
    result = run_cli("launch", image)
    assert result.returncode == 0, result.stderr[-2000:]
    url = result.stdout.strip()
    try:
        assert url.startswith("http://127.0.0.1:") and "token=" in url
        base, token = url.split("/lab?token=")
        with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=10) as answer:
            assert answer.status == 200
        assert run_cli("launch", image).stdout.strip() == url  # found, not started again
    finally:
        assert run_cli("stop", image).returncode == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{base}/api", timeout=5)
