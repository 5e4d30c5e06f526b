"""A hub's rights in the session namespaces it makes: a kopf process of its own.

    kopf run --all-namespaces --standalone -m pangeo_binder.dask_operator.hub_rights

A hub may create session namespaces but holds no rights inside any namespace of its own
(deploy/jupyterhub/hub-rbac.yaml). This binds its session role in each namespace it made
(named in the namespace's `pangeo-binder/hub-account` annotation), and nowhere else.

It runs apart from the Dask operator (deploy/dask-operator/operator.yaml) because
binding that role is the one right here that reaches outside session namespaces: the
operator talks to schedulers, which run their users' code, and answers the API server's
admission calls; this process talks to nothing but the API server. Its ServiceAccount
may read namespaces, create RoleBindings and bind that one role: nothing on pods,
Secrets or Dask objects.

Like the rest of pangeo_binder.dask_operator it needs only kopf and kr8s.
"""

from __future__ import annotations

import kopf
import kr8s

from .contract import HUB_ACCOUNT_ANNOTATION, HUB_BINDING, HUB_SESSION_ROLE, PART_OF, USER_LABEL


@kopf.on.startup()
async def need_no_more_rights(settings: kopf.OperatorSettings, **_) -> None:
    # Events about a namespace would need the right to create events cluster-wide (the
    # log says the same), and watching CRDs for new resources the right to read them:
    # namespaces are all it handles.
    settings.posting.enabled = False
    settings.scanning.disabled = True


# An event handler: it stores nothing on namespaces (it may not patch them), sees every
# session namespace when it starts, and is idempotent.
@kopf.on.event("", "v1", "namespaces", labels={USER_LABEL: kopf.PRESENT},
               annotations={HUB_ACCOUNT_ANNOTATION: kopf.PRESENT})
async def grant_hub_rights(event, name, annotations, status, logger, **_) -> None:
    """Bind the hub's session rights (pods, the user's RBAC objects, quota, Secrets...)
    in the session namespace `name` that the hub made."""
    if event["type"] == "DELETED" or status.get("phase") == "Terminating":
        return
    account_namespace, _, account = annotations[HUB_ACCOUNT_ANNOTATION].partition(":")
    api = await kr8s.asyncio.api()
    binding = kr8s.asyncio.objects.RoleBinding({
        "metadata": {"name": HUB_BINDING, "namespace": name,
                     "labels": {"app.kubernetes.io/part-of": PART_OF}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": HUB_SESSION_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": account,
                      "namespace": account_namespace}]}, api=api)
    if await binding.exists():
        return
    try:
        await binding.create()
    except kr8s.ServerError as exc:
        if getattr(exc.response, "status_code", None) != 409:  # made by a parallel event
            raise
    logger.info(f"the hub {account_namespace}:{account} may now run sessions in {name}")
