"""One user name, one set of object names: user names become Kubernetes names without
two users ever sharing a namespace, ServiceAccount, token or Dask credentials, and the
launcher names a user's namespace as the hub (KubeSpawner 7) does."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from pangeo_binder.checks.notebook_job import JobNames, JobTarget, job_manifest
from pangeo_binder.checks.notebooks import NotebookOptions
from pangeo_binder.hub.hooks import NAMESPACE_TEMPLATE
from pangeo_binder.kube import USER_ANNOTATION, made_for, user_slug
from pangeo_binder.sessions.dask_policy import DaskCaps
from pangeo_binder.sessions.launch import session_manifests
from pangeo_binder.sessions.objects import KubeTarget, SessionNames

# What KubeSpawner 7.1.0 (the hub image's, environments/pangeo-binder/requirements.lock)
# makes of NAMESPACE_TEMPLATE for each user: recorded from `KubeSpawner(...).namespace`
# with enable_user_namespaces, as the hub computes it.
HUB_NAMESPACES = {
    "a.b": "pangeo-a-b---2e7336dc",
    "a-b": "pangeo-a-b",
    "a_b": "pangeo-a-b---648fa9b3",
    "A.B": "pangeo-a-b---4b861d8b",
    "ada": "pangeo-ada",
    "Ada Lovelace": "pangeo-ada-lovelace---76740216",
    "zoë": "pangeo-zo---2752b886",
    "用户": "pangeo-x---0d0e1a86",
    "1234": "pangeo-x-1234---03ac6742",
    "null": "pangeo-null",
    "true": "pangeo-true",
    "a--b": "pangeo-a-b---90827a2e",
    "___": "pangeo-x---bda25155",
    "ab-": "pangeo-ab---2fd1864b",
    "{user}": "pangeo-user---8a78baa3",
    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefgh":
        "pangeo-abcdefghijabcdefghijabcdefghijabcdefghijabcdefgh",
    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghi":
        "pangeo-abcdefghijabcdefghijabcdefghijabcdefg---7eef89a2",
    "workshop-participant-0001-of-the-pangeo-summer-school-2026-a":
        "pangeo-workshop-participant-0001-of-the-pang---57637a4a",
    "workshop-participant-0001-of-the-pangeo-summer-school-2026-b":
        "pangeo-workshop-participant-0001-of-the-pang---fbcac6d7",
}
# Names the old scheme (lower-case, other characters to "-", cut at 40) made one.
ALIKE = ["a.b", "a-b", "a_b", "A.B", "a--b", "a__b",
         "workshop-participant-0001-of-the-pangeo-summer-school-2026-a",
         "workshop-participant-0001-of-the-pangeo-summer-school-2026-b"]
AWKWARD = ["zoë", "用户", "Zoë", "1234", "null", "true", "___", "-", "", "ab-", "{user}",
           "ada@example.org", "x" * 200, "1" + "." * 80]
# DNS-1035 label (RFC 1035): what a Service's name must be; also a DNS-1123 label.
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


@pytest.mark.parametrize("users", [ALIKE, ALIKE + AWKWARD], ids=["alike", "all"])
def test_names_the_old_scheme_merged_are_all_distinct(users):
    for field in ("namespace", "account", "token", "session"):
        made = {getattr(SessionNames.of(KubeTarget(user=u)), field) for u in users}
        assert len(made) == len(users), field
    assert len({JobNames.new(u).job.rsplit("-", 1)[0] for u in users}) == len(users)


@pytest.mark.parametrize("user", [*HUB_NAMESPACES, *ALIKE, *AWKWARD])
def test_every_name_made_from_a_user_is_a_dns_label(user):
    names = SessionNames.of(KubeTarget(user=user))
    made = [getattr(names, field) for field in names.__dataclass_fields__]
    made += [user_slug(user), JobNames.new(user).job]
    for name in made:
        assert DNS_LABEL.fullmatch(name), (user, name)  # 63 characters at most


def test_the_longest_derived_name_fits_in_63_characters():
    user = "a" * 48  # already a label: kept whole, the longest a slug gets
    names = SessionNames.of(KubeTarget(user=user))
    assert user_slug(user) == user
    assert max(len(getattr(names, f)) for f in names.__dataclass_fields__) == 63
    assert len(names.ingress) == len(names.session) == 63
    assert len(JobNames.new(user).job) == 63


@pytest.mark.parametrize("user", HUB_NAMESPACES)
def test_the_launcher_names_the_namespace_as_the_hub(user):
    assert SessionNames.of(KubeTarget(user=user)).namespace == HUB_NAMESPACES[user]
    assert NAMESPACE_TEMPLATE.format(safe_username=user_slug(user)) == HUB_NAMESPACES[user]


def test_the_launcher_names_the_namespace_as_kubespawner_itself():
    """Where KubeSpawner is installed (the hub image), against its own expansion of the
    template (the method the spawner calls for `namespace`; no API client is made)."""
    spawner = pytest.importorskip("kubespawner").KubeSpawner

    for user in [*HUB_NAMESPACES, *ALIKE, *AWKWARD]:
        hub = SimpleNamespace(slug_scheme=spawner.slug_scheme.default_value, name="",
                              user=SimpleNamespace(name=user, id=1),
                              _namespace_default=lambda: "pangeo-hub")
        assert spawner._expand_user_properties(hub, NAMESPACE_TEMPLATE) == \
            SessionNames.of(KubeTarget(user=user)).namespace, user


@pytest.mark.parametrize("user", ["a.b", "null", "true", "1234", "zoë", "{user}"])
def test_objects_carry_the_slug_as_label_and_the_exact_name(user):
    manifests = session_manifests("img", KubeTarget(user=user), DaskCaps(), "t")
    job = job_manifest("img", NotebookOptions(), JobTarget(KubeTarget(user=user)),
                       JobNames.new(user), deadline=60)
    for manifest in [*manifests, job, job["spec"]["template"]]:
        metadata = manifest["metadata"]
        # A string even where YAML would read null, true or a number.
        assert metadata["labels"]["pangeo-binder/user"] == user_slug(user)
        assert metadata["annotations"][USER_ANNOTATION] == user
        assert made_for(metadata, user)
    service = next(m for m in manifests if m["kind"] == "Service")
    assert service["spec"]["selector"]["pangeo-binder/user"] == user_slug(user)


def test_ownership_is_the_exact_name_never_the_slug():
    mine = {"labels": {"pangeo-binder/user": "a-b"}, "annotations": {USER_ANNOTATION: "a.b"}}
    assert made_for(mine, "a.b")
    assert not made_for(mine, "a_b") and not made_for(mine, "A.B") and not made_for(mine, "a-b")
    # Unmarked (older or hand-made) objects are nobody's to reuse or delete.
    assert not made_for({"labels": {"pangeo-binder/user": "a-b"}}, "a-b")
