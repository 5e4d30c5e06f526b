"""Attacks on another user's session, run from inside a session with nothing but its
pod's ServiceAccount token and network: shared by the sessions `launch --kubernetes`
makes (test_kubernetes.py) and those the hub spawns as BinderHub's launcher asks
(test_binderhub.py). Each probe prints one JSON line of what it got."""

from __future__ import annotations

import json

# Dask objects that would give a session host access, another image, the scheduler
# outside the cluster or more workers than its cap (cap 2, as both kinds of session are
# launched here), and what got through before admission was an allow-list: a gitRepo
# volume (CVE-2024-10220), an unconfined seccomp or AppArmor profile, the session label
# copied onto a scheduler pod, a Dask setting that turns the session's TLS off, a reserved
# label added by a metadata-only patch, and the worker cap passed through the worker
# group's scale subresource or through worker groups added one by one. Tried from inside
# a session with its own ServiceAccount token, as an attacker would; each is refused by
# the API server (the operator's admission webhook), naming the rule.
ALLOWLIST_PROBE = """
import copy, json, os, ssl, time, urllib.error, urllib.request
from dask_kubernetes.operator import make_cluster_spec
from kr8s.objects import new_class
group, ns = "kubernetes.dask.org/v1", os.environ["DASK_KUBERNETES__NAMESPACE"]
image = os.environ["DASK_KUBERNETES__IMAGE"]
DaskCluster = new_class("DaskCluster", group)
sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
token, context = open(sa + "token").read(), ssl.create_default_context(cafile=sa + "ca.crt")

def call(method, path, body, kind="application/merge-patch+json"):
    request = urllib.request.Request(
        "https://kubernetes.default.svc" + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + token, "Content-Type": kind})
    try:
        return json.load(urllib.request.urlopen(request, context=context))
    except urllib.error.HTTPError as error:
        return {"refused": error.code, "message": json.load(error).get("message", "")}

def cluster(name, change, workers=1):
    spec = make_cluster_spec(name=name, image=image, n_workers=workers)
    change(spec["spec"])
    return call("POST", f"/apis/{group}/namespaces/{ns}/daskclusters", spec,
                "application/json")

sched = lambda s: s["scheduler"]["spec"]
container = lambda s: sched(s)["containers"][0]
attacks = {
    "privileged": lambda s: container(s).update(securityContext={"privileged": True}),
    "hostpath": lambda s: sched(s).update(volumes=[{"name": "node", "hostPath": {"path": "/"}}]),
    "hostnetwork": lambda s: sched(s).update(hostNetwork=True),
    "nodename": lambda s: sched(s).update(nodeName="pangeo-binder-dev"),
    "image": lambda s: container(s).update(image="pangeo-binder/python:latest"),
    "priority": lambda s: sched(s).update(priorityClassName="system-node-critical"),
    "tolerations": lambda s: sched(s).update(tolerations=[{"operator": "Exists"}]),
    "nodeport": lambda s: s["scheduler"]["service"].update(type="NodePort"),
    "loadbalancer": lambda s: s["scheduler"]["service"].update(type="LoadBalancer"),
    "workers": lambda s: s["worker"].update(replicas=5),
    "gitRepo": lambda s: sched(s).update(volumes=[{"name": "r", "gitRepo": {
        "repository": "https://example.org/r.git", "directory": "r/.git"}}]),
    "seccomp": lambda s: sched(s).update(securityContext={"seccompProfile": {
        "type": "Unconfined"}}),
    "apparmor": lambda s: s["scheduler"].update(metadata={"annotations": {
        "container.apparmor.security.beta.kubernetes.io/scheduler": "unconfined"}}),
    "session label": lambda s: s["scheduler"].update(metadata={"labels": {
        "pangeo-binder/session": "true", "app.kubernetes.io/part-of": "pangeo-binder"}}),
    "tls off": lambda s: sched(s)["containers"][0].update(env=[{
        "name": "DASK_DISTRIBUTED__COMM__REQUIRE-ENCRYPTION", "value": "False"}]),
}
results = {name: cluster(f"escape-{name.replace(' ', '-').lower()}", change)
           for name, change in attacks.items()}
# Root, as the user or as the group, is not refused but rewritten: the policy fixes who
# a Dask pod runs as, so what was stored is the answer. No workers, so that these take
# none of the cap.
made = cluster("rootgroup", lambda s: sched(s).update(securityContext={"runAsGroup": 0}),
               workers=0)
results["root group"] = made["spec"]["scheduler"]["spec"].get("securityContext") \\
    if "spec" in made else made
call("DELETE", f"/apis/{group}/namespaces/{ns}/daskclusters/rootgroup", {})
made = cluster("rooted", lambda s: container(s).update(
    securityContext={"runAsNonRoot": False, "runAsUser": 0}), workers=0)
results["root"] = made["spec"]["scheduler"]["spec"]["containers"][0].get("securityContext") \\
    if "spec" in made else made
call("DELETE", f"/apis/{group}/namespaces/{ns}/daskclusters/rooted", {})
# A DaskJob whose job runner is privileged.
runner = copy.deepcopy(make_cluster_spec(name="x", image=image)["spec"]["scheduler"]["spec"])
runner["containers"][0]["securityContext"] = {"privileged": True}
results["job"] = call("POST", f"/apis/{group}/namespaces/{ns}/daskjobs", {
    "apiVersion": group, "kind": "DaskJob", "metadata": {"name": "escape-job"},
    "spec": {"job": {"spec": runner}, "cluster": {
        "spec": make_cluster_spec(name="x", image=image, n_workers=1)["spec"]}}},
    "application/json")
# A cluster within the cap, then a metadata-only patch and a scale past the cap.
cluster("ok", lambda s: None)
path = f"/apis/{group}/namespaces/{ns}"
results["label patch"] = call("PATCH", path + "/daskclusters/ok", {"metadata": {
    "labels": {"pangeo-binder/session": "true"}}})
for _ in range(120):
    if "refused" not in call("GET", path + "/daskworkergroups/ok-default", None):
        break
    time.sleep(1)
results["scale"] = call("PATCH", path + "/daskworkergroups/ok-default/scale",
                        {"spec": {"replicas": 6}})
# Worker groups of one worker each beside it: the second passes the cap (1 + 1 + 1).
def worker_group(name):
    spec = copy.deepcopy(make_cluster_spec(name="ok", image=image)["spec"]["worker"])
    spec["replicas"] = 1
    return call("POST", path + "/daskworkergroups", {
        "apiVersion": group, "kind": "DaskWorkerGroup", "metadata": {"name": name},
        "spec": {"cluster": "ok", "worker": spec}}, "application/json")
results["group within cap"] = worker_group("ok-extra")
results["group past cap"] = worker_group("ok-extra2")
print(json.dumps(results))
"""
ALLOWLIST_RULES = {
    "privileged": "privileged containers are not allowed",
    "hostpath": "hostPath volumes are not allowed",
    "hostnetwork": "host namespaces are not allowed",
    "nodename": "choosing a node is not allowed",
    "image": "is not the session's image",
    "priority": "priority class 'system-node-critical' is not allowed",
    "tolerations": "is not allowed",
    "nodeport": "NodePort services are not allowed (ClusterIP only)",
    "loadbalancer": "LoadBalancer services are not allowed (ClusterIP only)",
    "workers": "more than its cap of 2",
    "job": "spec.job.spec.containers[0]: privileged containers are not allowed",
    "gitRepo": "gitRepo volumes are not allowed",
    "seccomp": "only RuntimeDefault or Localhost",
    "apparmor": "profile 'unconfined' is not allowed",
    "session label": "spec.scheduler.metadata.labels[pangeo-binder/session]: reserved",
    "tls off": "this Dask setting is the operator's",
    "label patch": "metadata.labels[pangeo-binder/session]: reserved",
    "scale": "workers in all of this session's Dask clusters is more than its cap of",
    "group past cap": "3 workers in all of this session's Dask clusters is more than its cap",
}


# From bob's session, alice's scheduler, the way a stranger would try it: plain TCP (what
# any pod on the cluster network can do), TLS with bob's own session credentials, and TLS
# with a certificate of his own making. Each must be refused before anything runs.
INTRUDER_PROBE = """
import asyncio, json
from distributed import Client
from distributed.core import rpc
from distributed.security import Security
target = "work-scheduler.{namespace}.svc.cluster.local:8786"
results = {{}}
def plant():
    open("/tmp/intruder-was-here", "w").write("bob")
async def plain():
    async with rpc("tcp://" + target, connection_args={{"require_encryption": False}},
                   timeout=15) as scheduler:
        return await scheduler.identity()
def attempt(name, call):
    try:
        results[name] = "ANSWERED " + str(call())[:100]
    except Exception as error:
        results[name] = "REFUSED " + type(error).__name__
attempt("plain tcp", lambda: asyncio.run(asyncio.wait_for(plain(), 30)))
attempt("tls, bob's credentials",
        lambda: Client("tls://" + target, timeout=15).run(plant))
attempt("tls, a certificate of bob's own",
        lambda: Client("tls://" + target, timeout=15, security=Security.temporary()).run(plant))
print(json.dumps(results))
"""


# From bob's session, alice's scheduler's HTTP port (dashboard and API), which any pod
# reaches where NetworkPolicy is not enforced: reading her task stream and call stacks,
# and retiring her workers. Without her session's secret path, every path is 404.
HTTP_INTRUDER_PROBE = """
import json, urllib.error, urllib.request
base = "http://work-scheduler.{namespace}.svc.cluster.local:8787"
results = {{}}
for method, path in [("GET", "/status"), ("GET", "/health"), ("GET", "/json/identity.json"),
                     ("GET", "/info/main/workers.html"), ("GET", "/api/v1/check_idle"),
                     ("GET", "/call-stack"), ("POST", "/api/v1/retire_workers")]:
    request = urllib.request.Request(base + path, method=method,
                                     data=b'{{"n": 2}}' if method == "POST" else None)
    try:
        results[method + " " + path] = urllib.request.urlopen(request, timeout=15).status
    except urllib.error.HTTPError as error:
        results[method + " " + path] = error.code
print(json.dumps(results))
"""
# Alice's own session reaches it under the path it was given.
HTTP_OWNER_PROBE = """
import json, os, urllib.request
base = "http://work-scheduler.{namespace}.svc.cluster.local:8787/"
path = os.environ["PANGEO_BINDER_DASK_DASHBOARD_PREFIX"]
print(json.dumps({{"health": urllib.request.urlopen(base + path + "/health").status,
                  "identity": json.load(urllib.request.urlopen(
                      base + path + "/json/identity.json"))["type"]}}))
"""


def allowlist_results(output: str) -> dict:
    """The probe's answers, checked: every attack refused by the session policy with
    its rule, root (the user and the group) rewritten, and a worker group within the cap
    made. Returns what is left unchecked (nothing, when the probe and this agree)."""
    results = json.loads(output.strip().splitlines()[-1])
    # The refusals first: an attack let through may also take workers of the cap, and
    # should be what a failure names.
    for attack, rule in ALLOWLIST_RULES.items():
        answer = results.pop(attack)
        assert answer.get("refused") in (400, 403, 422), (attack, answer)
        assert "pangeo-binder session policy" in answer["message"], (attack, answer)
        assert rule in answer["message"], (attack, answer)
    assert results.pop("root group") == {
        "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000, "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"}}
    root = results.pop("root")
    assert root.get("runAsNonRoot") is True and root.get("runAsUser") == 1000, root
    within = results.pop("group within cap")
    assert "refused" not in within, within
    return results
