"""pangeo-binder's policy for Dask clusters, run inside the Dask operator's kopf process.

    kopf run --all-namespaces -m dask_kubernetes.operator.controller \\
        -m pangeo_binder.operator_policy

In a session namespace (one annotated with the session's caps by `pangeo-binder launch`):
- every DaskCluster gets an ownerReference to the session pod, so deleting the session —
  even a forced delete, a SIGKILL or an OOM kill — lets Kubernetes' garbage collector
  remove the cluster, its scheduler and its workers; a DaskCluster whose session is
  already gone is deleted;
- when the session pod is gone, its Dask pods are deleted at once, with no grace period:
  their work belonged to a session that no longer exists, and garbage collection alone
  waits for each pod's graceful shutdown at the kubelet's pace (a minute on a busy node);
  garbage collection stays the guarantee when the operator is down;
- a worker group asking for more workers than the namespace's cap is clamped to the cap,
  with a Warning event saying so (the ResourceQuota refuses any pod beyond it anyway).

This module needs only kopf and kr8s (both ship with dask-kubernetes), so it runs in the
pinned environment image without the rest of pangeo-binder.
"""

from __future__ import annotations

import asyncio
import contextlib

import kopf
import kr8s

DASK_GROUP = "kubernetes.dask.org"
# Session pods, from `launch --kubernetes` and from the hub hooks alike (KubeSpawner
# sets app.kubernetes.io/component itself, so the mark is a label of our own).
SESSION_LABEL = "pangeo-binder/session"
SESSION_SELECTOR = {"app.kubernetes.io/part-of": "pangeo-binder", SESSION_LABEL: "true"}
MAX_WORKERS_ANNOTATION = "pangeo-binder/max-workers"


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
    """Delete the namespace's DaskClusters and force-delete their pods, until none is
    left (a worker Deployment may make a pod again before it is itself gone)."""
    api = await kr8s.asyncio.api()
    for _ in range(60):
        clusters = [c async for c in api.async_get("daskclusters.kubernetes.dask.org",
                                                    namespace=namespace)]
        pods = [p async for p in api.async_get("pods", namespace=namespace,
                                                label_selector="dask.org/cluster-name")]
        if not clusters and not pods:
            return
        for obj in clusters + pods:
            with contextlib.suppress(kr8s.NotFoundError):
                await obj.delete(force=isinstance(obj, kr8s.asyncio.objects.Pod))
        logger.info(f"the session is gone: deleting {len(clusters)} Dask cluster(s) and "
                    f"{len(pods)} Dask pod(s) in {namespace}")
        await asyncio.sleep(1)


# An event handler, not kopf.on.delete: it needs no finalizer and stores nothing on pods.
@kopf.on.event("", "v1", "pods", labels={SESSION_LABEL: "true"})
async def end_session(event, namespace, logger, **_) -> None:
    if event["type"] != "DELETED" or not await _is_session_namespace(namespace):
        return
    if [p for p in await _session_pods(namespace) if not p.metadata.get("deletionTimestamp")]:
        return  # another session pod (a restarted hub's spawn) still uses the namespace
    await _end_session_clusters(namespace, logger)


@kopf.on.create(DASK_GROUP, "v1", "daskworkergroups")
@kopf.on.field(DASK_GROUP, "v1", "daskworkergroups", field="spec.worker.replicas")
async def clamp_workers(body, spec, namespace, patch, logger, **_) -> None:
    namespace_obj = await _namespace(namespace)
    cap = namespace_obj.annotations.get(MAX_WORKERS_ANNOTATION)
    wanted = (spec.get("worker") or {}).get("replicas")
    if cap is None or wanted is None or int(wanted) <= int(cap):
        return
    patch.spec["worker"] = {"replicas": int(cap)}
    message = (f"asked for {wanted} workers; this session may have at most {cap}: "
               f"clamped to {cap}")
    kopf.warn(body, reason="WorkerCapReached", message=message)
    logger.warning(message)
