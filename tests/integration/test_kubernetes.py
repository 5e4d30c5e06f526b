"""Sessions on the real dev cluster (deploy/dev-cluster) with the real Dask operator.

Everything a user would notice: launching, a Dask cluster that computes from inside the
session, isolation between users proven against the API server, cleanup by garbage
collection after a forced delete, caps, and stop.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
from conftest import EXAMPLES, run_cli
from k8s_helpers import (
    dask_leftovers,
    dask_pods,
    isolation_probe,
    kubecluster_probe,
    kubectl,
    require_cluster,
    wait_until,
)

pytestmark = pytest.mark.integration

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
def cluster(docker_engine):
    require_cluster()
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


def test_workers_beyond_the_cap_are_clamped_visibly(alice):
    out = in_session(ALICE, """
from dask_kubernetes.operator import KubeCluster
import time
cluster = KubeCluster(name="big", n_workers=5)
cluster.scale(7)
time.sleep(8)
print("WORKERS", len(cluster.scheduler_info["workers"]))
""")
    ns = f"pangeo-{ALICE}"
    replicas = kubectl("-n", ns, "get", "daskworkergroup", "big-default", "-o",
                       "jsonpath={.spec.worker.replicas}", check=False)
    events = kubectl("-n", ns, "get", "events", "--field-selector",
                     "reason=WorkerCapReached", "-o", "jsonpath={.items[*].message}")
    assert "at most 2" in events and "clamped to 2" in events
    assert replicas in ("2", "")  # "" once the cluster closed with the script
    assert "WORKERS" in out and int(out.split("WORKERS")[1].split()[0]) <= 2
    quota = kubectl("-n", ns, "get", "resourcequota", f"pangeo-{ALICE}-caps", "-o",
                    "jsonpath={.spec.hard.pods}")
    assert quota == "4"  # session + scheduler + 2 workers, enforced by the API server
    # The script's end closed the cluster: its pods go, freeing the quota.
    wait_until(lambda: not dask_pods(ns), 90, "the closed cluster's pods are still there", ns)


def test_kubecluster_computes_in_the_users_namespace_owned_by_the_session(alice):
    out = in_session(ALICE, kubecluster_probe("JUPYTER_TOKEN"))
    assert "SUM 4000000.0" in out
    assert "VERSIONS 1" in out
    assert f"DASHBOARD /proxy/work-scheduler.pangeo-{ALICE}:8787/status" in out
    # The dashboard is served through jupyter-server-proxy; other hosts are not.
    assert "PROXIED 200" in out and "REFUSED 403" in out
    owners = json.loads(kubectl("-n", f"pangeo-{ALICE}", "get", "daskcluster", "work", "-o",
                                "jsonpath={.metadata.ownerReferences}"))
    assert [(o["kind"], o["name"]) for o in owners] == [("Pod", f"pangeo-{ALICE}-session")]


def test_another_user_gets_403_on_everything_of_the_first(alice, image):
    result = launch(image, BOB)
    assert result.returncode == 0, result.stderr[-3000:]
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


def test_forced_delete_of_the_session_removes_its_dask_cluster(alice):
    ns = f"pangeo-{ALICE}"
    assert dask_pods(ns), "the 'work' cluster of an earlier test should be running"
    kubectl("-n", ns, "delete", "pod", f"pangeo-{ALICE}-session", "--grace-period=0",
            "--force", "--wait=false")
    wait_until(lambda: not dask_leftovers(ns), 60, "the Dask cluster is still there", ns)


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


def test_stop_removes_the_session_and_everything_it_made(alice):
    result = run_cli("stop", "--kubernetes", "--user", BOB)
    assert result.returncode == 0, result.stderr
    assert kubectl("get", "namespace", f"pangeo-{BOB}", check=False) == ""
    assert kubectl("get", "all,serviceaccounts,roles,rolebindings,secrets,daskclusters",
                   "-A", "-l", f"pangeo-binder/user={BOB}", "-o", "name") == ""


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
