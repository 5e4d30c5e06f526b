"""What a Kubernetes session is made of, rendered without a cluster."""

import json

import pytest

from pangeo_binder.kube import KubernetesError, dns_name
from pangeo_binder.sessions.dask_policy import CapsError, DaskCaps, session_dask_env
from pangeo_binder.sessions.launch import KubeTarget, SessionNames, session_manifests

IMAGE = "registry.example.org/binder-org-repo:0123456789abcdef"


def objects(user="ada-lovelace", namespace=None, caps=None):
    target = KubeTarget(user=user, namespace=namespace)
    manifests = session_manifests(IMAGE, target, caps or DaskCaps(), "t0k")
    return {m["kind"]: m for m in manifests}


def test_one_namespace_per_user_with_deterministic_names():
    names = SessionNames.of(KubeTarget(user="ada-lovelace"))
    assert names.namespace == "pangeo-ada-lovelace"
    assert names.session == "pangeo-ada-lovelace-session"
    assert SessionNames.of(KubeTarget(user="ada-lovelace")) == names
    # A name that is not a DNS label keeps a readable part and gets a hash of itself.
    assert SessionNames.of(KubeTarget(user="Ada.Lovelace")).namespace == \
        "pangeo-ada-lovelace---a99708eb"
    assert SessionNames.of(KubeTarget(user="ada", namespace="class")).namespace == "class"


def test_every_object_is_labelled_and_in_the_users_namespace():
    for manifest in objects().values():
        labels = manifest["metadata"]["labels"]
        assert labels["pangeo-binder/user"] == "ada-lovelace"
        assert labels["app.kubernetes.io/part-of"] == "pangeo-binder"
        assert manifest["metadata"]["namespace"] == "pangeo-ada-lovelace"


def test_role_is_least_privilege():
    rules = objects()["Role"]["rules"]
    granted = {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    assert ("kubernetes.dask.org", "daskclusters", "create") in granted
    assert ("", "pods/log", "get") in granted
    assert not {g for g in granted if g[1] in ("secrets", "roles", "rolebindings",
                                               "namespaces", "pods/exec")}
    assert not {g for g in granted if g[0] == "" and g[2] in ("create", "patch", "delete")}
    assert all("*" not in rule["verbs"] and "*" not in rule["resources"] for rule in rules)


def test_session_pod_is_locked_down_and_sized():
    pod = objects(caps=DaskCaps(session_cores="500m", session_memory="1Gi"))["Pod"]
    assert pod["spec"]["securityContext"]["runAsUser"] == 1000
    container = pod["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert container["securityContext"] == {"allowPrivilegeEscalation": False,
                                            "capabilities": {"drop": ["ALL"]}}
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DASK_KUBERNETES__IMAGE"] == IMAGE  # workers run the session's image
    assert env["DASK_KUBERNETES__NAMESPACE"] == "pangeo-ada-lovelace"
    assert env["DASK_LABEXTENSION__FACTORY__CLASS"] == "KubeCluster"
    token = next(e for e in container["env"] if e["name"] == "JUPYTER_TOKEN")
    assert token["valueFrom"]["secretKeyRef"]["name"] == "pangeo-ada-lovelace-token"


def test_quota_covers_session_scheduler_and_capped_workers():
    caps = DaskCaps(max_workers=3, worker_cores="2", worker_memory="4Gi",
                    session_cores="1", session_memory="2Gi")
    hard = objects(caps=caps)["ResourceQuota"]["spec"]["hard"]
    assert hard["pods"] == "5"
    assert hard["requests.cpu"] == "9000m"  # 1 + (1 + 3) * 2
    assert hard["limits.memory"] == f"{(2 + 4 * 4) * 1024}Mi"
    limits = objects(caps=caps)["LimitRange"]["spec"]["limits"][0]
    assert limits["max"] == {"cpu": "2000m", "memory": "4096Mi"}


def test_dask_resources_reach_the_cluster_spec_as_a_literal():
    env = session_dask_env(IMAGE, "ns", DaskCaps(worker_cores="250m", worker_memory="1Gi"))
    # A small worker may burst to the session's cores; its memory is a hard size.
    assert json.loads(env["DASK_KUBERNETES__RESOURCES"]) == {
        "requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1Gi"}}
    hard = DaskCaps(worker_cores="250m", worker_cores_limit="250m", worker_memory="1Gi")
    assert hard.worker_resources["limits"] == {"cpu": "250m", "memory": "1Gi"}


def test_the_quota_caps_the_burst_of_cpu_limits_too():
    caps = DaskCaps(max_workers=2, worker_cores="200m", worker_memory="768Mi")
    made = objects(caps=caps)
    hard = made["ResourceQuota"]["spec"]["hard"]
    assert hard["requests.cpu"] == "1600m"  # 1 + (1 + 2) * 0.2: what is reserved
    assert hard["limits.cpu"] == "4000m"  # 1 + (1 + 2) * 1: the bursts, capped
    assert hard["requests.memory"] == hard["limits.memory"]
    limits = made["LimitRange"]["spec"]["limits"][0]
    assert limits["default"]["cpu"] == "1000m" and limits["defaultRequest"]["cpu"] == "200m"
    assert limits["max"]["cpu"] == "1000m"


@pytest.mark.parametrize("caps", [
    {"max_workers": -1}, {"worker_cores": "lots"}, {"worker_memory": "0"},
    {"session_memory": "-1Gi"}, {"idle_timeout": -5},
    {"worker_cores": "2", "worker_cores_limit": "1"},
])
def test_nonsense_caps_are_refused(caps):
    with pytest.raises(CapsError):
        DaskCaps(**caps)


def test_user_names_become_dns_labels():
    assert dns_name("Ada_Lovelace@Example.org") == "ada-lovelace-example-org"
    with pytest.raises(KubernetesError):
        dns_name("___")


def test_a_hubs_caps_come_from_its_environment():
    caps = DaskCaps.from_env({"PANGEO_BINDER_MAX_WORKERS": "8",
                              "PANGEO_BINDER_WORKER_MEMORY": "4Gi", "OTHER": "x"})
    assert caps == DaskCaps(max_workers=8, worker_memory="4Gi")
    with pytest.raises(CapsError, match="PANGEO_BINDER_MAX_WORKERS must be a whole number"):
        DaskCaps.from_env({"PANGEO_BINDER_MAX_WORKERS": "many"})
    with pytest.raises(CapsError, match="invalid worker cores"):
        DaskCaps.from_env({"PANGEO_BINDER_WORKER_CORES": "lots"})


def test_session_pods_carry_the_mark_the_operator_policy_selects():
    pod = next(m for m in session_manifests("img", KubeTarget(user="ada"), DaskCaps(), "t")
               if m["kind"] == "Pod")
    assert pod["metadata"]["labels"]["pangeo-binder/session"] == "true"
