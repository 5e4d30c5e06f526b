"""pangeo-binder's policy for Dask clusters, run inside the Dask operator's kopf process.

    kopf run --all-namespaces -m dask_kubernetes.operator.controller \\
        -m pangeo_binder.dask_operator.policy

In a session namespace (one annotated with the session's caps by `pangeo-binder launch`):
- every DaskCluster gets an ownerReference to the session pod, so deleting the session —
  even a forced delete, a SIGKILL or an OOM kill — lets Kubernetes' garbage collector
  remove the cluster, its scheduler and its workers; a DaskCluster whose session is
  already gone is deleted (each cluster's timer looks every few seconds);
- when the session pod is gone, its Dask pods are deleted at once, with no grace period:
  their work belonged to a session that no longer exists, and garbage collection alone
  waits for each pod's graceful shutdown at the kubelet's pace (a minute on a busy node);
  garbage collection stays the guarantee when the operator is down;
- it watches only Dask objects and namespaces: its rights on pods, Services and
  Deployments are in session namespaces only (pangeo_binder.dask_operator.watches);
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
import ssl
from collections.abc import Iterator

import kopf
import kr8s

from . import schedulers, watches
from .admission import (
    Policy,
    Session,
    object_violations,
    pod_admission_violations,
    pod_specs,
    restrict,
    scale_violations,
    service_violations,
    session_selector,
    worker_counts,
)
from .contract import MAX_WORKERS_ANNOTATION, OPERATOR_ACCOUNT

# dask-kubernetes' controller unpickles what a scheduler answers over Dask RPC and deletes
# Deployments by the names a scheduler returns: its scheduler calls are replaced by ours
# (HTTP and JSON only, names checked against the worker group's own), or it does not start.
schedulers.install()

DASK_GROUP = "kubernetes.dask.org"


async def _namespace(name: str):
    api = await kr8s.asyncio.api()
    return await kr8s.asyncio.objects.Namespace.get(name, api=api)


async def _session_pods(namespace: str) -> list:
    api = await kr8s.asyncio.api()
    return [pod async for pod in api.async_get("pods", namespace=namespace,
                                               label_selector=session_selector())]


async def _live_session_pods(namespace: str) -> list:
    return [p for p in await _session_pods(namespace)
            if not p.metadata.get("deletionTimestamp")]


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
    pods = await _live_session_pods(namespace)
    if not pods:
        await _end_clusters(namespace, logger)
        return
    owners = list(cluster.metadata.get("ownerReferences") or [])
    known = {o.get("uid") for o in owners}
    added = [{"apiVersion": "v1", "kind": "Pod", "name": p.name, "uid": p.metadata.uid}
             for p in pods if p.metadata.uid not in known]
    if added:
        await cluster.patch({"metadata": {"ownerReferences": owners + added}})
        logger.info(f"Dask cluster {name} is owned by session pod(s) "
                    f"{', '.join(a['name'] for a in added)}")


async def _mark_running_if_scheduler_is_up(name: str, namespace: str, logger) -> None:
    """What upstream's scheduler Service handler did (pangeo_binder.dask_operator.watches:
    the operator does not watch Services): a ClusterIP scheduler Service that exists
    means "Running". dask-kubernetes' DaskCluster create handlers write "Pending" in one
    patch at the end of their cycle, after they made the Service, so this runs when
    "Pending" lands, and from the cluster's timer."""
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


# A failure here is retried after `backoff` seconds (kopf's default: a minute), and while
# it is pending kopf keeps the cluster's finalizer even once it is deleted: so a 403 in
# a namespace whose session is gone ends it, and another failure is retried soon.
@kopf.on.field(DASK_GROUP, "v1", "daskclusters", field="status.phase", new="Pending",
               backoff=3)
async def unstick_pending_cluster(name, namespace, logger, **_) -> None:
    with _session_rights(namespace, logger):
        await _mark_running_if_scheduler_is_up(name, namespace, logger)


# Ownership, and the end of a cluster whose session is gone, from the cluster's own timer:
# the operator does not watch pods, so it looks. Not in the DaskCluster's create handlers:
# kopf applies those handlers' patches together at the end, and a slower extra handler
# there would let the operator's "Pending" patch land after "Running".
SESSION_CHECK_SECONDS = 3


# A failed look (an API server too busy to answer) is tried again at the next interval,
# not after kopf's default minute.
@kopf.timer(DASK_GROUP, "v1", "daskclusters", interval=SESSION_CHECK_SECONDS,
            initial_delay=1, backoff=SESSION_CHECK_SECONDS)
async def follow_session(name, namespace, logger, **_) -> None:
    with _session_rights(namespace, logger):
        await _own_cluster(name, namespace, logger)
        await _mark_running_if_scheduler_is_up(name, namespace, logger)


# A deleted cluster's pods go at once: whoever deleted it (the session's `close()`, the
# idle timeout, garbage collection after a forced delete or an OOM kill of the session),
# and every cluster of the namespace when the session is gone. Optional: no finalizer.
@kopf.on.delete(DASK_GROUP, "v1", "daskclusters", optional=True)
async def end_deleted_cluster(name, namespace, logger, **_) -> None:
    # NotFound: the namespace is going as well.
    with contextlib.suppress(kr8s.NotFoundError), _session_rights(namespace, logger):
        if not await _is_session_namespace(namespace):
            return
        session_gone = not await _live_session_pods(namespace)
        await _end_clusters(namespace, logger, name=None if session_gone else name)


@kopf.timer(DASK_GROUP, "v1", "daskjobs", interval=SESSION_CHECK_SECONDS)
async def follow_job_runner(name, namespace, status, logger, **_) -> None:
    with _session_rights(namespace, logger):
        await watches.follow_job_runner(name, namespace, status, logger)


def _status(exc: kr8s.ServerError) -> int | None:
    """The HTTP status of the API server's answer that `exc` reports."""
    return getattr(exc.response, "status_code", None)


@contextlib.contextmanager
def _session_rights(namespace: str, logger) -> Iterator[None]:
    """Where the operator's rights in a session namespace are gone, there is nothing
    left for it to do: they come from the session's RoleBinding, which goes with the
    session (`stop`, the namespace's deletion) while its Dask objects may still be on
    their way out (the operator releases their finalizers with its rights on Dask
    objects, which are not the session's to give)."""
    try:
        yield
    except kr8s.ServerError as exc:
        if _status(exc) != 403:
            raise
        logger.debug(f"no rights in {namespace}: its session is gone")


async def _end_clusters(namespace: str, logger, name: str | None = None) -> None:
    """Delete DaskCluster `name` (all of the namespace's without one), its Deployments
    (so that no ReplicaSet keeps making pods) and force-delete its pods, until only
    clusters on their way out are left (their finalizers are the operator's to release).
    Without grace: the cluster's work is abandoned, and a graceful end waits for each
    pod at the kubelet's pace (tens of seconds on a busy node)."""
    api = await kr8s.asyncio.api()
    selector = "dask.org/cluster-name"
    # A DaskJob's runner pod stays after its cluster, for its logs, until its session goes.
    selector = f"{selector}={name},dask.org/component!=job-runner" if name else selector
    for _ in range(60):
        clusters = [c async for c in api.async_get(f"daskclusters.{DASK_GROUP}",
                                                    namespace=namespace)
                    if name in (None, c.name)]
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
        logger.info(f"deleting {len(live)} Dask cluster(s), {len(deployments)} "
                    f"Deployment(s) and {len(pods)} pod(s) in {namespace}")
        await asyncio.sleep(1)


# ------------------------------------------------------------------ admission

DASK_KINDS = {"daskclusters": "DaskCluster", "daskworkergroups": "DaskWorkerGroup",
              "daskjobs": "DaskJob", "daskautoscalers": "DaskAutoscaler"}
# Whom the webhooks answer: a client certificate from this CA (a file), with this
# common name, which the API server presents (its AdmissionConfiguration names it for
# webhooks). Without them anyone who reaches the webhook's Service could ask it about any
# namespace: what a session's cap is, whether an image is a session's.
WEBHOOK_CLIENT_CA = "PANGEO_BINDER_WEBHOOK_CLIENT_CA"
WEBHOOK_CLIENT_NAME = "PANGEO_BINDER_WEBHOOK_CLIENT_NAME"
# The operator's own requests (the objects and pods it makes from Dask objects).
OPERATOR_USER = os.environ.get("PANGEO_BINDER_OPERATOR_ACCOUNT",
                               "system:serviceaccount:{}:{}".format(*OPERATOR_ACCOUNT))


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
    the certificate deploy/dask-operator/install made, when it is mounted; to the API
    server alone when its client CA is set (the TLS handshake fails for anyone else)."""
    certs = os.environ.get("PANGEO_BINDER_WEBHOOK_CERTS")
    client_ca = os.environ.get(WEBHOOK_CLIENT_CA) or None
    if certs:
        settings.admission.server = kopf.WebhookServer(
            addr="0.0.0.0", port=9443, certfile=f"{certs}/tls.crt", pkeyfile=f"{certs}/tls.key",
            verify_cafile=client_ca, verify_mode=ssl.CERT_REQUIRED if client_ca else None)


def _authenticate(sslpeer) -> None:
    """Refuse a caller whose client certificate is not the API server's (any certificate
    of the client CA would pass the handshake: the cluster's CA signs nodes' too)."""
    wanted = os.environ.get(WEBHOOK_CLIENT_NAME)
    if not wanted:
        return
    names = [value for rdn in (sslpeer or {}).get("subject", ()) for key, value in rdn
             if key == "commonName"]
    if names != [wanted]:
        raise kopf.AdmissionError("pangeo-binder session policy: not the API server",
                                  code=401)


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
    and ServiceAccounts its session pods run with, and its worker cap."""
    cap = (await _namespace(namespace)).annotations.get(MAX_WORKERS_ANNOTATION)
    if cap is None:
        return None
    pods = [pod.raw["spec"] for pod in await _session_pods(namespace)
            if not pod.metadata.get("deletionTimestamp")]
    return Session(images=frozenset(c["image"] for pod in pods for c in pod["containers"]),
                   accounts=frozenset(pod.get("serviceAccountName") or "" for pod in pods),
                   max_workers=int(cap))


def _refuse(found: list[str]) -> None:
    if found:
        raise kopf.AdmissionError("pangeo-binder session policy: " + "; ".join(found),
                                  code=403)


async def restrict_dask(patch, sslpeer, **_) -> None:
    """Set the restricted pod security of a Dask object's pod specs."""
    _authenticate(sslpeer)

    def fill(body: dict) -> None:
        for where, pod in pod_specs(body["kind"], body.get("spec") or {}):
            restrict(pod, scheduler=where.endswith("scheduler.spec"),
                     worker=where.endswith("worker.spec"))
    patch.fns.append(fill)


async def _worker_objects(namespace: str) -> tuple[list[dict], list[dict]]:
    api = await kr8s.asyncio.api()
    clusters = [c.raw async for c in api.async_get(f"daskclusters.{DASK_GROUP}",
                                                    namespace=namespace)]
    groups = [g.raw async for g in api.async_get(f"daskworkergroups.{DASK_GROUP}",
                                                  namespace=namespace)]
    return clusters, groups


async def check_dask(body, namespace, operation, old, userinfo, subresource, sslpeer,
                     **_) -> None:
    """Refuse a Dask object that breaks the session policy, naming every rule: on
    creation and on every update, deleting or not, its spec changed or not (which rules
    an unchanged spec is spared is admission.object_violations' to say)."""
    _authenticate(sslpeer)
    try:
        session = await _session(namespace)
    except kr8s.ServerError as exc:
        # The operator's own request where the session's RoleBinding is gone (stop, the
        # namespace's deletion): it releases its finalizers of what is left, and may make
        # nothing there any more. Anyone else's is refused (the webhook fails closed).
        if _status(exc) == 403 and userinfo.get("username") == OPERATOR_USER:
            return
        raise
    if session is None:
        return
    old = old if operation == "UPDATE" else None
    if subresource == "scale":  # an autoscaling/v1 Scale of a worker group
        clusters, groups = await _worker_objects(namespace)
        old_replicas = ((old or {}).get("spec") or {}).get("replicas")
        _refuse(scale_violations(body["metadata"]["name"],
                                 int((body.get("spec") or {}).get("replicas") or 0),
                                 old_replicas, groups, worker_counts(clusters, groups),
                                 session))
        return
    counts = None
    if body["kind"] in ("DaskCluster", "DaskWorkerGroup"):
        counts = worker_counts(*await _worker_objects(namespace))
    _refuse(object_violations(body["kind"], body, old, session, _policy(),
                              operator=userinfo.get("username") == OPERATOR_USER,
                              counts=counts))


for _plural in DASK_KINDS:
    kopf.on.mutate(DASK_GROUP, "v1", _plural, id="restrict-dask",
                   operations=["CREATE", "UPDATE"])(restrict_dask)
    kopf.on.validate(DASK_GROUP, "v1", _plural, id="check-dask",
                     operations=["CREATE", "UPDATE"])(check_dask)
kopf.on.validate(DASK_GROUP, "v1", "daskworkergroups", id="check-dask", subresource="scale",
                 operations=["UPDATE"])(check_dask)


@kopf.on.validate("", "v1", "pods", id="check-pod", operations=["CREATE", "UPDATE"])
async def check_pod(body, namespace, operation, old, userinfo, sslpeer, **_) -> None:
    """Every pod in a session namespace is restricted; a Dask pod also runs the
    session's image (a session pod's image is its launcher's choice: the hub's allowed
    images, or the administrator's `launch`), and only a pod its launcher made, not one
    the operator or a controller made from a Dask object, is a session pod."""
    _authenticate(sslpeer)
    if (session := await _session(namespace)) is None:
        return
    _refuse(pod_admission_violations(
        body, old if operation == "UPDATE" else None, session, _policy(),
        made_by_operator=userinfo.get("username") == OPERATOR_USER))


@kopf.on.validate("", "v1", "services", id="check-service", operations=["CREATE", "UPDATE"])
async def check_service(body, namespace, sslpeer, **_) -> None:
    _authenticate(sslpeer)
    if await _session(namespace) is not None:
        _refuse(service_violations(body.get("spec") or {}, "spec"))


# Last: every handler, upstream's and this module's, is registered by now.
watches.install()
