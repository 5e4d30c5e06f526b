"""What the operator watches: Dask objects and namespaces, never pods, Services or
Deployments across the cluster.

The operator holds its rights on pods, Services, Deployments and the Dask Secret only in
session namespaces, through the RoleBinding each session makes when it is made
(pangeo_binder.sessions.objects); cluster-wide it may read namespaces and the Dask
objects. kopf watches every resource a handler names across the whole cluster, and
dask-kubernetes' controller names two that the operator may not list there:

- a scheduler Service's status, which marks its DaskCluster "Running" (upstream's
  `handle_scheduler_service_status`): the policy does the same from the DaskCluster's
  own handlers, reading that one Service in its namespace
  (policy._mark_running_if_scheduler_is_up);
- a DaskJob runner pod's phase, which moves the job on and deletes its cluster when the
  runner ends (upstream's `handle_runner_status_change_*`): `follow_job_runner` reads the
  runner pod from the DaskJob's own timer and calls the same upstream functions.

`install` takes those handlers out of kopf's registry, and refuses to start the operator
(one line) if any other handler would still watch a resource outside the Dask group and
namespaces: after an upgrade of dask-kubernetes that adds one, the operator would
otherwise fail its watch (403) and miss what it was for, silently.
"""

from __future__ import annotations

import importlib
import types

import kopf

from .schedulers import CLUSTER_LABEL, COMPONENT_LABEL, CONTROLLER

# Upstream handlers replaced here, by the phase of the pod they followed.
SERVICE_STATUS_HANDLER = "handle_scheduler_service_status"
RUNNER_HANDLERS = {"Running": "handle_runner_status_change_running",
                   "Succeeded": "handle_runner_status_change_succeeded",
                   "Failed": "handle_runner_status_change_failed"}
# The DaskJob's status once upstream's handler for the runner's phase has run.
JOB_STATUS = {"Running": "Running", "Succeeded": "Successful", "Failed": "Failed"}
# Resources the operator may not watch across the cluster (the Dask objects and
# namespaces it may).
_PROBES = [kopf.Resource(group, "v1", plural, kind=kind, singular=kind.lower(),
                         namespaced=True)
           for group, plural, kind in (("", "pods", "Pod"), ("", "services", "Service"),
                                       ("", "secrets", "Secret"),
                                       ("", "configmaps", "ConfigMap"),
                                       ("apps", "deployments", "Deployment"))]


def _watching_registries(registry) -> list:
    # kopf watches what these name (its observer's own list); webhooks are not watched.
    return [registry._indexing, registry._watching, registry._spawning, registry._changing]


def watched_outside_dask(registry) -> list[str]:
    """The handlers that would make kopf watch pods, Services, Secrets, ConfigMaps or
    Deployments across the cluster: [] when none would."""
    found = []
    for handlers in _watching_registries(registry):
        for handler in handlers.get_all_handlers():
            selector = handler.selector
            if selector is not None and any(selector.check(r) for r in _PROBES):
                found.append(f"{handler.id} watches {selector}")
    return found


def install(registry=None, controller: types.ModuleType | None = None) -> None:
    controller = controller or importlib.import_module(CONTROLLER)
    registry = registry or kopf.get_default_registry()
    names = [SERVICE_STATUS_HANDLER, *RUNNER_HANDLERS.values()]
    replaced = {getattr(controller, name, None) for name in names} - {None}
    for handlers in _watching_registries(registry):
        handlers._handlers[:] = [h for h in handlers._handlers if h.fn not in replaced]
    if problems := watched_outside_dask(registry):
        raise SystemExit("pangeo-binder: refusing to start the Dask operator: it may watch "
                         "pods, Services and Deployments only in session namespaces, and "
                         f"{'; '.join(problems)}")


async def follow_job_runner(name: str, namespace: str, status: dict, logger,
                            controller: types.ModuleType | None = None) -> None:
    """Move DaskJob `name` on to its runner pod's phase, as upstream's pod handlers did
    when the phase changed: once per phase, with the pod's own metadata."""
    import kr8s

    controller = controller or importlib.import_module(CONTROLLER)
    api = await kr8s.asyncio.api()
    selector = {CLUSTER_LABEL: name, COMPONENT_LABEL: "job-runner"}
    runners = [p async for p in api.async_get("pods", namespace=namespace,
                                               label_selector=selector)]
    if not runners:
        return
    phase = runners[0].raw.get("status", {}).get("phase")
    done = status.get("jobStatus")
    if phase not in RUNNER_HANDLERS or done in (JOB_STATUS[phase], "Successful", "Failed"):
        return
    handler = getattr(controller, RUNNER_HANDLERS[phase])
    await handler(meta=runners[0].raw["metadata"], namespace=namespace, logger=logger)
