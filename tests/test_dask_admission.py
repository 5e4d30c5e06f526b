"""The session policy the Dask operator's admission webhooks enforce: each rule refuses
the spec that breaks it, and KubeCluster()'s own specs pass once restricted."""

import copy

import pytest
from dask_kubernetes_spec import cluster_spec

from pangeo_binder.dask_operator.admission import (
    Policy,
    Session,
    cap_violation,
    dask_violations,
    pod_specs,
    restrict,
    worker_counts,
)
from pangeo_binder.spec import without_credentials

IMAGE = "registry.example.org/binder-tutorial:0123abcd"
SESSION = Session(images=frozenset({IMAGE}), max_workers=2)


def restricted_cluster() -> dict:
    spec = cluster_spec(IMAGE)
    for _, pod in pod_specs("DaskCluster", spec):
        restrict(pod)
    return spec


def test_kubeclusters_own_spec_passes_once_restricted():
    spec = cluster_spec(IMAGE)
    assert dask_violations("DaskCluster", spec, SESSION, Policy())  # as sent: refused
    assert dask_violations("DaskCluster", restricted_cluster(), SESSION, Policy()) == []


def test_workers_run_without_their_unreachable_dashboard():
    spec = cluster_spec(IMAGE)
    for where, pod in pod_specs("DaskCluster", spec):
        restrict(pod, scheduler=where.endswith("scheduler.spec"),
                 worker=where.endswith("worker.spec"))
    worker = spec["worker"]["spec"]["containers"][0]["args"]
    assert worker == ["dask-worker", "--name", "$(DASK_WORKER_NAME)", "--no-dashboard"]
    scheduler = spec["scheduler"]["spec"]["containers"][0]["args"]
    assert "--no-dashboard" not in scheduler  # the sidebar's dashboard stays


def test_restrict_never_overrides_what_a_spec_says():
    spec = cluster_spec(IMAGE)
    spec["scheduler"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    restrict(spec["scheduler"]["spec"])
    assert spec["scheduler"]["spec"]["containers"][0]["securityContext"]["privileged"]
    found = dask_violations("DaskCluster", spec, SESSION, Policy())
    assert "spec.scheduler.spec.containers[0]: privileged containers are not allowed" in found


ATTACKS = {
    "privileged": (lambda p: p["containers"][0]["securityContext"].update(privileged=True),
                   "privileged containers are not allowed"),
    "root": (lambda p: p["securityContext"].update(runAsUser=0), "must run as uid 1000"),
    "hostPath": (lambda p: p.update(volumes=[{"name": "node", "hostPath": {"path": "/"}}]),
                 "hostPath volumes are not allowed"),
    "hostNetwork": (lambda p: p.update(hostNetwork=True), "host namespaces are not allowed"),
    "hostPID": (lambda p: p.update(hostPID=True), "host namespaces are not allowed"),
    "nodeName": (lambda p: p.update(nodeName="node-1"), "choosing a node is not allowed"),
    "image": (lambda p: p["containers"][0].update(image="docker.io/miner:latest"),
              "is not the session's image"),
    "capabilities": (lambda p: p["containers"][0]["securityContext"].update(
        capabilities={"add": ["SYS_ADMIN"], "drop": ["ALL"]}),
        "adding capabilities is not allowed"),
    "priority": (lambda p: p.update(priorityClassName="system-node-critical"),
                 "priority class 'system-node-critical' is not allowed"),
    "tolerations": (lambda p: p.update(tolerations=[{"operator": "Exists"}]),
                    "is not allowed"),
    "hostPort": (lambda p: p["containers"][0].update(ports=[{"containerPort": 80,
                                                             "hostPort": 80}]),
                 "host ports are not allowed"),
    "init container": (lambda p: p.update(initContainers=[{"name": "x", "image": "evil"}]),
                       "is not the session's image"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("part", ["scheduler", "worker"])
def test_each_forbidden_pod_shape_is_refused_by_name(attack, part):
    spec = restricted_cluster()
    change, rule = ATTACKS[attack]
    change(spec[part]["spec"])
    found = dask_violations("DaskCluster", spec, SESSION, Policy())
    assert any(rule in line and line.startswith(f"spec.{part}.spec") for line in found), found


@pytest.mark.parametrize("kind", ["NodePort", "LoadBalancer", "ExternalName"])
def test_only_clusterip_scheduler_services(kind):
    spec = restricted_cluster()
    spec["scheduler"]["service"]["type"] = kind
    assert dask_violations("DaskCluster", spec, SESSION, Policy()) == [
        f"spec.scheduler.service.type: {kind} services are not allowed (ClusterIP only)"]


def test_a_dask_job_is_checked_in_its_runner_and_its_cluster():
    runner = {"containers": [{"name": "job", "image": IMAGE}]}
    restrict(runner)
    cluster = restricted_cluster()
    cluster["worker"]["spec"]["hostNetwork"] = True
    job = {"job": {"spec": copy.deepcopy(runner)}, "cluster": {"spec": cluster}}
    job["job"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    found = dask_violations("DaskJob", job, SESSION, Policy())
    assert any(f.startswith("spec.job.spec.containers[0]: privileged") for f in found)
    assert any(f.startswith("spec.cluster.spec.worker.spec.hostNetwork") for f in found)


def test_an_operator_may_allow_more():
    spec = restricted_cluster()
    spec["worker"]["spec"]["containers"][0]["image"] = "registry.example.org/gpu:1"
    spec["worker"]["spec"]["priorityClassName"] = "workshop"
    policy = Policy(image_prefixes=("registry.example.org/",), priority_classes=("workshop",))
    assert dask_violations("DaskCluster", spec, SESSION, policy) == []


def group(name, cluster, replicas):
    return {"metadata": {"name": name}, "spec": {"cluster": cluster,
                                                 "worker": {"replicas": replicas}}}


def test_workers_are_capped_over_all_clusters_and_groups():
    clusters = [{"metadata": {"name": "a"}, "spec": {"worker": {"replicas": 1}}}]
    groups = [group("a-default", "a", 1)]
    counts = worker_counts(clusters, groups)
    # A second cluster of 1 fits the cap of 2; of 2 it does not.
    assert cap_violation("DaskCluster", "b", {"worker": {"replicas": 1}}, counts,
                         SESSION) is None
    assert "3 workers in all of this session's Dask clusters is more than its cap of 2" in \
        cap_violation("DaskCluster", "b", {"worker": {"replicas": 2}}, counts, SESSION)
    # More worker groups than the cap, one worker each.
    assert cap_violation("DaskWorkerGroup", "extra", {"worker": {"replicas": 2}}, counts,
                         SESSION)
    # The operator making a new cluster's default group: counted once, as the group.
    fresh = worker_counts([{"metadata": {"name": "c"}, "spec": {"worker": {"replicas": 2}}}],
                          [])
    assert cap_violation("DaskWorkerGroup", "c-default", {"cluster": "c",
                                                          "worker": {"replicas": 2}},
                         fresh, SESSION) is None
    # Scaling the default group is counted once, not beside the cluster's old replicas.
    assert cap_violation("DaskWorkerGroup", "a-default", {"worker": {"replicas": 2}},
                         counts, SESSION) is None


def test_an_autoscaler_cannot_reach_past_the_cap():
    assert dask_violations("DaskAutoscaler", {"cluster": "a", "minimum": 0, "maximum": 50},
                           SESSION, Policy()) == [
        "spec.maximum: 50 workers is more than this session's cap of 2"]


@pytest.mark.parametrize("text, shown", [
    ("https://ada:tok3n@example.org/r.git", "https://example.org/r.git"),
    ("cannot read https://ghp_SECRET@github.com/o/r: denied",
     "cannot read https://github.com/o/r: denied"),
    ("ssh://git@example.org/o/r.git", "ssh://git@example.org/o/r.git"),
    ("ssh://git:pw@example.org/o/r.git", "ssh://example.org/o/r.git"),
    ("git@github.com:o/r.git", "git@github.com:o/r.git"),
])
def test_credentials_are_removed_from_urls(text, shown):
    assert without_credentials(text) == shown
