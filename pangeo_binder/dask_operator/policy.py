"""pangeo-binder's policy for Dask clusters, run inside the Dask operator's kopf process.

    kopf run --all-namespaces -m dask_kubernetes.operator.controller \\
        -m pangeo_binder.dask_operator.policy

In a session namespace (one annotated with the session's caps by `pangeo-binder launch`):
- every DaskCluster gets an ownerReference to the session pod, so deleting the session —
  even a forced delete, a SIGKILL or an OOM kill — lets Kubernetes' garbage collector
  remove the cluster, its scheduler and its workers; a DaskCluster whose session is
  already gone is deleted;
- when the session pod is gone, its Dask pods are deleted at once, with no grace period:
  their work belonged to a session that no longer exists, and garbage collection alone
  waits for each pod's graceful shutdown at the kubelet's pace (a minute on a busy node);
  garbage collection stays the guarantee when the operator is down;
- it serves the admission webhooks that check, before they exist, every Dask object,
  pod and Service in a session namespace (pangeo_binder.dask_operator.admission has the rules:
  the session's image, uid 1000, no privilege, no host access, within the worker cap).

This module needs only kopf and kr8s (both ship with dask-kubernetes), so it runs in the
pinned environment image without the rest of pangeo-binder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os

import kopf
import kr8s

from . import schedulers
from .admission import (
    Policy,
    Session,
    cap_violation,
    dask_violations,
    pod_specs,
    pod_violations,
    restrict,
    service_violations,
    worker_counts,
)

# dask-kubernetes' controller unpickles what a scheduler answers over Dask RPC and deletes
# Deployments by the names a scheduler returns: its scheduler calls are replaced by ours
# (HTTP and JSON only, names checked against the worker group's own), or it does not start.
schedulers.install()

DASK_GROUP = "kubernetes.dask.org"
# Session pods, from `launch --kubernetes` and from the hub hooks alike (KubeSpawner
# sets app.kubernetes.io/component itself, so the mark is a label of our own).
SESSION_LABEL = "pangeo-binder/session"
SESSION_SELECTOR = {"app.kubernetes.io/part-of": "pangeo-binder", SESSION_LABEL: "true"}
MAX_WORKERS_ANNOTATION = "pangeo-binder/max-workers"
# As in pangeo_binder.sessions.dask_policy (this module runs without its dependencies).
HUB_ACCOUNT_ANNOTATION = "pangeo-binder/hub-account"
HUB_SESSION_ROLE = "pangeo-binder-hub-session"
HUB_BINDING = "pangeo-binder-hub"


async def _namespace(name: str):
    api = await kr8s.asyncio.api()
    return await kr8s.asyncio.objects.Namespace.get(name, api=api)


async def _session_pods(namespace: str) -> list:
    api = await kr8s.asyncio.api()
    selector = ",".join(f"{k}={v}" for k, v in SESSION_SELECTOR.items())
    return [pod async for pod in api.async_get("pods", namespace=namespace,
                                               label_selector=selector)]


async def _is_session_namespace(namespace: str) -> bool:
    # Every namespace a session is launched into carries its caps, whoever made it.
    return MAX_WORKERS_ANNOTATION in (await _namespace(namespace)).annotations


async def _own_cluster(name: str, namespace: str, logger) -> None:
    """Make the session pod(s) of `namespace` owners of DaskCluster `name`, or delete the
    cluster when its session is gone."""
    if not await _is_session_namespace(namespace):
        return
    api = await kr8s.asyncio.api()
    clusters = [c async for c in api.async_get("daskclusters.kubernetes.dask.org", name,
                                                namespace=namespace)]
    if not clusters:
        return
    cluster = clusters[0]
    pods = [p for p in await _session_pods(namespace)
            if not p.metadata.get("deletionTimestamp")]
    if not pods:
        logger.info(f"the session is gone: deleting Dask cluster {name}")
        await cluster.delete()
        return
    owners = list(cluster.metadata.get("ownerReferences") or [])
    known = {o.get("uid") for o in owners}
    added = [{"apiVersion": "v1", "kind": "Pod", "name": p.name, "uid": p.metadata.uid}
             for p in pods if p.metadata.uid not in known]
    if added:
        await cluster.patch({"metadata": {"ownerReferences": owners + added}})
        logger.info(f"Dask cluster {name} is owned by session pod(s) "
                    f"{', '.join(a['name'] for a in added)}")


# Ownership is set when the cluster's scheduler Service appears, not in the DaskCluster's
# own create handlers: kopf applies those handlers' patches together at the end, and a
# slower extra handler there would let the operator's "Pending" patch land after its
# "Running" one, leaving KubeCluster() waiting forever.
@kopf.on.create("", "v1", "services", labels={"dask.org/component": "scheduler"})
async def own_new_cluster(labels, namespace, logger, **_) -> None:
    await _own_cluster(labels["dask.org/cluster-name"], namespace, logger)


async def _mark_running_if_scheduler_is_up(name: str, namespace: str, logger) -> None:
    """Work around a race in dask-kubernetes 2026.3: its DaskCluster create handlers
    write phase "Pending" in one patch at the end of their cycle, while the scheduler
    Service's handler writes "Running" as soon as the Service exists; when the Service
    handler wins, "Pending" lands last and KubeCluster() never sees its cluster start.
    A ClusterIP scheduler Service that exists means "Running" (the operator's own rule)."""
    api = await kr8s.asyncio.api()
    services = [s async for s in api.async_get("services", f"{name}-scheduler",
                                                namespace=namespace)]
    if not services or services[0].spec.get("type") == "LoadBalancer":
        return
    clusters = [c async for c in api.async_get("daskclusters.kubernetes.dask.org", name,
                                                namespace=namespace)]
    if clusters and clusters[0].raw.get("status", {}).get("phase") == "Pending":
        await clusters[0].patch({"status": {"phase": "Running"}})
        logger.info(f"Dask cluster {name}: scheduler service is up, phase Running")


@kopf.on.field(DASK_GROUP, "v1", "daskclusters", field="status.phase", new="Pending")
async def unstick_pending_cluster(name, namespace, logger, **_) -> None:
    await _mark_running_if_scheduler_is_up(name, namespace, logger)


# A safety net for clusters made while the operator was down, or whose events raced.
@kopf.timer(DASK_GROUP, "v1", "daskclusters", interval=10, initial_delay=10)
async def own_existing_cluster(name, namespace, logger, **_) -> None:
    await _own_cluster(name, namespace, logger)
    await _mark_running_if_scheduler_is_up(name, namespace, logger)


async def _end_session_clusters(namespace: str, logger) -> None:
    """Delete the namespace's DaskClusters, their Deployments (so that no ReplicaSet
    keeps making pods) and force-delete their pods, until only clusters on their way out
    are left (their finalizers are the operator's to release)."""
    api = await kr8s.asyncio.api()
    selector = "dask.org/cluster-name"
    for _ in range(60):
        clusters = [c async for c in api.async_get(f"daskclusters.{DASK_GROUP}",
                                                    namespace=namespace)]
        deployments = [d async for d in api.async_get("deployments", namespace=namespace,
                                                       label_selector=selector)]
        pods = [p async for p in api.async_get("pods", namespace=namespace,
                                                label_selector=selector)]
        live = [c for c in clusters if not c.metadata.get("deletionTimestamp")]
        if not live and not deployments and not pods:
            return
        for obj in live + deployments + pods:
            with contextlib.suppress(kr8s.NotFoundError):
                await obj.delete(force=isinstance(obj, kr8s.asyncio.objects.Pod))
        logger.info(f"the session is gone: deleting {len(live)} Dask cluster(s), "
                    f"{len(deployments)} Deployment(s) and {len(pods)} pod(s) in "
                    f"{namespace}")
        await asyncio.sleep(1)


# An event handler, not kopf.on.delete: it needs no finalizer and stores nothing on pods.
@kopf.on.event("", "v1", "pods", labels={SESSION_LABEL: "true"})
async def end_session(event, namespace, logger, **_) -> None:
    if event["type"] != "DELETED" or not await _is_session_namespace(namespace):
        return
    if [p for p in await _session_pods(namespace) if not p.metadata.get("deletionTimestamp")]:
        return  # another session pod (a restarted hub's spawn) still uses the namespace
    await _end_session_clusters(namespace, logger)


# ------------------------------------------------------------- the hub's rights

# An event handler: it stores nothing on namespaces (the operator may not patch them),
# sees every session namespace when the operator starts, and is idempotent.
@kopf.on.event("", "v1", "namespaces", labels={"pangeo-binder/user": kopf.PRESENT},
               annotations={HUB_ACCOUNT_ANNOTATION: kopf.PRESENT})
async def grant_hub_rights(event, name, annotations, status, logger, **_) -> None:
    """A hub may create session namespaces but holds no rights inside any namespace of
    its own: this binds its session rights (pods, the user's RBAC objects, quota,
    Secrets...) in each session namespace it made, and nowhere else."""
    if event["type"] == "DELETED" or status.get("phase") == "Terminating":
        return
    account_namespace, _, account = annotations[HUB_ACCOUNT_ANNOTATION].partition(":")
    api = await kr8s.asyncio.api()
    binding = kr8s.asyncio.objects.RoleBinding({
        "metadata": {"name": HUB_BINDING, "namespace": name,
                     "labels": {"app.kubernetes.io/part-of": "pangeo-binder"}},
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


# ------------------------------------------------------------------ admission

DASK_KINDS = {"daskclusters": "DaskCluster", "daskworkergroups": "DaskWorkerGroup",
              "daskjobs": "DaskJob", "daskautoscalers": "DaskAutoscaler"}
DASK_COMPONENT_LABEL = "dask.org/cluster-name"


# A DaskCluster deleted while one of its timers (the operator's autoshutdown, or
# own_existing_cluster) is mid-run keeps its finalizer until kopf looks again: by
# default a minute later, so a gone session's cluster and its quota stayed a minute.
TIMER_EXIT_POLLING = 1  # seconds


@kopf.on.startup()
async def release_deleted_clusters_promptly(settings: kopf.OperatorSettings, **_) -> None:
    settings.background.cancellation_polling = TIMER_EXIT_POLLING


@kopf.on.startup()
async def serve_admission(settings: kopf.OperatorSettings, **_) -> None:
    """Serve the admission webhooks (deploy/dask-operator/webhooks.yaml names them) with
    the certificate deploy/dask-operator/install made, when it is mounted."""
    certs = os.environ.get("PANGEO_BINDER_WEBHOOK_CERTS")
    if certs:
        settings.admission.server = kopf.WebhookServer(
            addr="0.0.0.0", port=9443, certfile=f"{certs}/tls.crt", pkeyfile=f"{certs}/tls.key")


def _policy() -> Policy:
    """The operator's settings: image prefixes, priority classes and tolerations allowed
    beyond the session's own image and the defaults."""
    def items(name: str) -> tuple[str, ...]:
        return tuple(i.strip() for i in os.environ.get(name, "").split(",") if i.strip())

    return Policy(image_prefixes=items("PANGEO_BINDER_ALLOWED_IMAGE_PREFIXES"),
                  priority_classes=items("PANGEO_BINDER_ALLOWED_PRIORITY_CLASSES"),
                  tolerations=tuple(json.loads(
                      os.environ.get("PANGEO_BINDER_ALLOWED_TOLERATIONS") or "[]")))


async def _session(namespace: str) -> Session | None:
    """The session of a session namespace (None for any other namespace): the images
    its session pods run, and its worker cap."""
    cap = (await _namespace(namespace)).annotations.get(MAX_WORKERS_ANNOTATION)
    if cap is None:
        return None
    images = {container["image"] for pod in await _session_pods(namespace)
              if not pod.metadata.get("deletionTimestamp")
              for container in pod.raw["spec"]["containers"]}
    return Session(images=frozenset(images), max_workers=int(cap))


def _refuse(found: list[str]) -> None:
    if found:
        raise kopf.AdmissionError("pangeo-binder session policy: " + "; ".join(found),
                                  code=403)


def _spec_unchanged(operation: str, old, new) -> bool:
    """Updates that leave the spec alone (finalizers, ownership, kopf's own annotations,
    a deletion) need no check: refusing them could only block a cleanup."""
    return operation == "UPDATE" and old is not None and new is not None and (
        old.get("spec") == new.get("spec") or new["metadata"].get("deletionTimestamp"))


async def restrict_dask(patch, **_) -> None:
    """Fill in the restricted pod security a Dask object's pod specs leave out."""
    def fill(body: dict) -> None:
        for where, pod in pod_specs(body["kind"], body.get("spec") or {}):
            restrict(pod, scheduler=where.endswith("scheduler.spec"),
                     worker=where.endswith("worker.spec"))
    patch.fns.append(fill)


async def check_dask(body, namespace, operation, old, new, **_) -> None:
    """Refuse a Dask object that breaks the session policy, naming every rule."""
    if _spec_unchanged(operation, old, new) or (session := await _session(namespace)) is None:
        return
    kind, spec = body["kind"], body.get("spec") or {}
    found = dask_violations(kind, spec, session, _policy())
    if SESSION_LABEL in (body["metadata"].get("labels") or {}):
        found.append(f"metadata.labels: {SESSION_LABEL} is reserved for session pods")
    if kind in ("DaskCluster", "DaskWorkerGroup"):
        api = await kr8s.asyncio.api()
        clusters = [c.raw async for c in api.async_get(f"daskclusters.{DASK_GROUP}",
                                                        namespace=namespace)]
        groups = [g.raw async for g in api.async_get(f"daskworkergroups.{DASK_GROUP}",
                                                      namespace=namespace)]
        if cap := cap_violation(kind, body["metadata"]["name"], spec,
                                worker_counts(clusters, groups), session):
            found.append(cap)
    _refuse(found)


for _plural in DASK_KINDS:
    kopf.on.mutate(DASK_GROUP, "v1", _plural, id="restrict-dask",
                   operations=["CREATE", "UPDATE"])(restrict_dask)
    kopf.on.validate(DASK_GROUP, "v1", _plural, id="check-dask",
                     operations=["CREATE", "UPDATE"])(check_dask)


@kopf.on.validate("", "v1", "pods", id="check-pod", operations=["CREATE"])
async def check_pod(body, namespace, **_) -> None:
    """Every pod in a session namespace is restricted; a Dask pod also runs the
    session's image (a session pod's image is its launcher's choice: the hub's allowed
    images, or the administrator's `launch`)."""
    if (session := await _session(namespace)) is None:
        return
    labels = body["metadata"].get("labels") or {}
    if labels.get(SESSION_LABEL) == "true" and DASK_COMPONENT_LABEL not in labels:
        session = Session(images=frozenset(c["image"] for c in body["spec"]["containers"]))
    _refuse(pod_violations(body["spec"], "spec", session, _policy()))


@kopf.on.validate("", "v1", "services", id="check-service", operations=["CREATE", "UPDATE"])
async def check_service(body, namespace, **_) -> None:
    if await _session(namespace) is not None:
        _refuse(service_violations(body.get("spec") or {}, "spec"))
