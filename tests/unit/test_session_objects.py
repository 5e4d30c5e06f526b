"""What a Kubernetes session is made of, rendered without a cluster."""

import json
import re
from collections.abc import Iterator
from decimal import Decimal

import pytest

from pangeo_binder.checks.notebook_job import JobNames, JobTarget, job_manifest
from pangeo_binder.checks.notebooks import NotebookOptions
from pangeo_binder.kube import USER_ANNOTATION, KubernetesError, dns_name, user_slug
from pangeo_binder.sessions.dask_policy import (
    CapsError,
    DaskCaps,
    quantity,
    session_dask_env,
)
from pangeo_binder.sessions.launch import session_manifests
from pangeo_binder.sessions.objects import (
    KubeTarget,
    SessionNames,
    credentials_labels,
    session_namespace,
)

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


@pytest.mark.parametrize(("text", "value"), [
    ("500m", Decimal("0.5")), ("2", Decimal(2)), ("4Gi", Decimal(4 * 2**30)),
    ("1P", Decimal(10) ** 15), ("2Ei", Decimal(2 * 2**60)), ("1e3", Decimal(1000)),
    ("1E3", Decimal(1000)), ("1E", Decimal(10) ** 18), ("1.5k", Decimal(1500)),
    (".5", Decimal("0.5")), ("250u", Decimal("0.00025")), ("1e-3", Decimal("0.001")),
])
def test_kubernetes_quantities_are_read_as_kubernetes_reads_them(text, value):
    assert quantity(text, "cores") == value


@pytest.mark.parametrize("text", ["", "lots", "1x", "1 Gi", "1e", "1.5.2", "Gi", "0",
                                  "-1", "1e19", "2e9999999999", "9Ei"])
def test_what_is_not_a_positive_kubernetes_quantity_is_refused(text):
    with pytest.raises(CapsError, match="invalid cores"):
        quantity(text, "cores")


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


# User names an authenticator may let through that YAML would read as a number, null, a
# boolean, a mapping or a comment, or that are long or not ASCII.
AWKWARD_USERS = ["1234", "null", "true", "a: b", "x#y", "line\nbreak", "a" * 63, "b" * 200,
                 "José", "日本"]
# What the API server accepts: a label value, a label key's name part, and the names of
# the objects made here (DNS-1123 labels; a Service's, a DNS-1035 label).
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                       r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
DNS_1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


def every_object(user: str) -> list[dict]:
    """Every object made for `user`: the namespace, the session's objects and a notebook
    Job, serialised as the client sends them (JSON) and read back."""
    target = KubeTarget(user=user)
    names = SessionNames.of(target)
    built = [session_namespace(names.namespace, user, user_slug(user), DaskCaps(),
                               "hub-namespace:hub"),
             *session_manifests(IMAGE, target, DaskCaps(), "t0k"),
             job_manifest(IMAGE, NotebookOptions(), JobTarget(target), JobNames.new(user),
                          deadline=60)]
    sent = [json.loads(json.dumps(obj)) for obj in built]
    assert sent == built  # nothing is changed on the way: every value is plain data
    return sent


def metadata_of(obj: dict) -> Iterator[dict]:
    """The object's metadata and its pod template's."""
    yield obj["metadata"]
    template = (obj.get("spec") or {}).get("template")
    if template:
        yield template["metadata"]


@pytest.mark.parametrize("user", AWKWARD_USERS, ids=repr)
def test_every_object_keeps_an_awkward_user_name_exactly(user):
    for obj in every_object(user):
        for metadata in metadata_of(obj):
            assert metadata["annotations"][USER_ANNOTATION] == user, obj["kind"]
            assert metadata["labels"]["pangeo-binder/user"] == user_slug(user), obj["kind"]


@pytest.mark.parametrize("user", AWKWARD_USERS, ids=repr)
def test_every_label_and_name_made_for_an_awkward_user_is_valid(user):
    for obj in every_object(user):
        name = obj["metadata"]["name"]
        valid_name = DNS_1035_LABEL if obj["kind"] == "Service" else DNS_1123_LABEL
        assert valid_name.fullmatch(name), (obj["kind"], name)
        if "namespace" in obj["metadata"]:
            assert DNS_1123_LABEL.fullmatch(obj["metadata"]["namespace"])
        labels = [metadata["labels"] for metadata in metadata_of(obj)]
        labels.append((obj.get("spec") or {}).get("selector") or {})  # a Service's
        for key, value in (item for found in labels for item in found.items()):
            assert LABEL_KEY.fullmatch(key), (obj["kind"], key)
            assert isinstance(value, str), (obj["kind"], key, value)
            assert len(value) <= 63 and LABEL_VALUE.fullmatch(value), (obj["kind"], key, value)
        for metadata in metadata_of(obj):
            assert all(isinstance(v, str) for v in metadata["annotations"].values())
    for value in credentials_labels(user_slug(user)).values():
        assert len(value) <= 63 and LABEL_VALUE.fullmatch(value)


def test_names_made_from_awkward_user_names_stay_apart():
    """Each awkward name and its near neighbours (what YAML, lower-casing or replacing
    characters would make of it) get namespaces and Job names of their own."""
    neighbours = ["x-1234", "Null", "NULL", "True", "a-b", "a--b", "a:b", "x-y", "xy",
                  "line-break", "line\rbreak", "a" * 62, "a" * 64, "b" * 199, "b" * 201,
                  "jose", "Jose", "josé", "日本語", "x"]
    users = AWKWARD_USERS + neighbours
    assert len({SessionNames.of(KubeTarget(user=u)).namespace for u in users}) == len(users)
    assert len({JobNames.new(u).job.rsplit("-", 1)[0] for u in users}) == len(users)
