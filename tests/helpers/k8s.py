"""Helpers for tests on the dev cluster: kubectl, waiting, and probing isolation."""

from __future__ import annotations

import json
import subprocess
import time


def kubectl(*args: str, check: bool = True, stdin: str | None = None) -> str:
    result = subprocess.run(["kubectl", *args], capture_output=True, text=True, input=stdin,
                            check=False, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
    return result.stdout


def wait_until(condition, timeout: float, what: str, namespace: str | None = None):
    """Poll `condition` each second until it is true; on timeout fail with `what`, plus
    the state of `namespace` (pods, Dask objects, latest events) when given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(1)
    state = f"\n{namespace_state(namespace)}" if namespace else ""
    raise AssertionError(f"{what} within {timeout}s{state}")


def namespace_state(namespace: str) -> str:
    """What is left in `namespace`, and why: for the message of a failed wait."""
    objects = kubectl("-n", namespace, "get", "pods,daskclusters,deployments,replicasets",
                      "-o", "custom-columns=KIND:.kind,NAME:.metadata.name,"
                      "DELETING:.metadata.deletionTimestamp,FINALIZERS:.metadata.finalizers,"
                      "OWNERS:.metadata.ownerReferences[*].name", check=False)
    events = kubectl("-n", namespace, "get", "events", "--sort-by=.lastTimestamp", "-o",
                     "custom-columns=TIME:.lastTimestamp,REASON:.reason,"
                     "OBJECT:.involvedObject.name,MESSAGE:.message", check=False)
    return objects + "\n".join(events.splitlines()[-15:])


def dask_pods(namespace: str, component: str | None = None) -> list[str]:
    """The namespace's Dask pods ("pod/NAME"), or those of one component ("worker")."""
    selector = f"dask.org/component={component}" if component else "dask.org/cluster-name"
    out = kubectl("-n", namespace, "get", "pods", "-l", selector, "-o", "name", check=False)
    return sorted(out.split())


def dask_leftovers(namespace: str) -> list[str]:
    """The namespace's DaskClusters and Dask pods (a DaskCluster may outlive its pods by
    a moment: the operator's finalizer releases it)."""
    out = kubectl("-n", namespace, "get", "daskclusters", "-o", "name", check=False)
    return out.split() + dask_pods(namespace)


def isolation_probe(paths: dict[str, str], names: dict[str, str], own_namespace: str) -> str:
    """Python to run in a session pod: with the pod's own ServiceAccount token, list,
    get, patch and delete each of `paths` (another user's objects) straight against the
    API server; print a JSON map of "verb kind" to HTTP status, plus "own daskclusters"
    (the token's own namespace, which must answer 200)."""
    return f"""
import json, ssl, urllib.request, urllib.error
sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
token = open(sa + "token").read()
context = ssl.create_default_context(cafile=sa + "ca.crt")
def call(method, path, body=None):
    request = urllib.request.Request("https://kubernetes.default.svc" + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={{"Authorization": "Bearer " + token,
                  "Content-Type": "application/merge-patch+json"}})
    try:
        return urllib.request.urlopen(request, context=context).status
    except urllib.error.HTTPError as error:
        return error.code
paths = {json.dumps(paths)}
names = {json.dumps(names)}
results = {{}}
for kind, path in paths.items():
    results["list " + kind] = call("GET", path)
    results["get " + kind] = call("GET", path + "/" + names[kind])
    results["patch " + kind] = call("PATCH", path + "/" + names[kind],
                                    {{"metadata": {{"labels": {{"owned": "intruder"}}}}}})
    results["delete " + kind] = call("DELETE", path + "/" + names[kind])
results["own daskclusters"] = call(
    "GET", "/apis/kubernetes.dask.org/v1/namespaces/{own_namespace}/daskclusters")
print(json.dumps(results))
"""


def kubecluster_probe(token_variable: str) -> str:
    """Python to run in a session pod, as a notebook would: KubeCluster() with 2 workers
    computes a sum; prints SUM, VERSIONS (distinct distributed versions of the workers),
    ADDRESS (the scheduler's, as the client reached it),
    DASHBOARD (the link), PROXIED (its status through jupyter-server-proxy with the
    server's token from `token_variable`) and REFUSED (the proxy's answer for the API
    server, which it must not reach)."""
    return f"""
from dask_kubernetes.operator import KubeCluster
from distributed import Client
import dask, dask.array as da
cluster = KubeCluster(name="work", n_workers=2, shutdown_on_close=False)
client = Client(cluster)
client.wait_for_workers(2, timeout=240)
print("SUM", da.ones((2000, 2000), chunks=500).sum().compute())
workers = client.get_versions()["workers"].values()
print("VERSIONS", len({{v["packages"]["distributed"] for v in workers}}))
print("ADDRESS", client.scheduler.address)
print("DASHBOARD", cluster.dashboard_link)
import os, urllib.error, urllib.request
lab = "http://127.0.0.1:8888"
prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
def get(path):
    request = urllib.request.Request(
        lab + path, headers={{"Authorization": "token " + os.environ["{token_variable}"]}})
    return urllib.request.urlopen(request).status
print("PROXIED", get(cluster.dashboard_link))
try:
    get(prefix + "proxy/kubernetes.default.svc:443/version")
except urllib.error.HTTPError as error:
    print("REFUSED", error.code)
"""
