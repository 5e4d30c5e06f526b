"""The names sessions, the hub and the Dask operator agree on (dask_operator.contract)
are the ones the deployment's manifests define."""

from __future__ import annotations

from ruamel.yaml import YAML

from pangeo_binder.dask_operator import contract
from tests.helpers.cli import REPO_ROOT


def manifests(path: str) -> dict[tuple[str, str], dict]:
    docs = YAML(typ="safe").load_all((REPO_ROOT / path).read_text())
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs if doc}


def test_the_operators_account_and_session_role_are_deployed():
    operator = manifests("deploy/dask-operator/operator.yaml")
    namespace, name = contract.OPERATOR_ACCOUNT
    assert operator[("ServiceAccount", name)]["metadata"]["namespace"] == namespace
    assert ("ClusterRole", contract.OPERATOR_SESSION_ROLE) in operator
    # The hub-rights process may bind the hub's session role, and only that one.
    rights = operator[("ClusterRole", "pangeo-binder-hub-rights")]["rules"]
    assert [r["resourceNames"] for r in rights if "bind" in r["verbs"]] == \
        [[contract.HUB_SESSION_ROLE]]


def test_the_hubs_session_role_is_deployed_and_may_bind_the_operators():
    hub = manifests("deploy/jupyterhub/hub-rbac.yaml")
    rules = hub[("ClusterRole", contract.HUB_SESSION_ROLE)]["rules"]
    bind = [r for r in rules if "bind" in r["verbs"]]
    assert [r.get("resourceNames") for r in bind] == [[contract.OPERATOR_SESSION_ROLE]]
