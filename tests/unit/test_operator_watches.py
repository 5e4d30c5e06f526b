"""The Dask operator watches Dask objects and namespaces only: upstream's handlers that
watch Services and pods across the cluster are taken out of kopf's registry, and an
operator whose handlers would still watch one refuses to start (one line)."""

from __future__ import annotations

import types

import kopf
import pytest

from pangeo_binder.dask_operator import watches

DASK = "kubernetes.dask.org"


def controller_like_upstream(registry: kopf.OperatorRegistry) -> types.ModuleType:
    """A controller module with dask-kubernetes' cluster-wide watches, by their names,
    and a DaskCluster handler, registered as upstream registers them."""
    controller = types.ModuleType("controller")

    @kopf.on.field("service", field="status", labels={"dask.org/component": "scheduler"},
                   registry=registry)
    async def handle_scheduler_service_status(**_): ...

    for phase, name in watches.RUNNER_HANDLERS.items():
        async def runner(**_): ...
        runner.__name__ = name
        kopf.on.field("pod", field="status.phase", new=phase,
                      labels={"dask.org/component": "job-runner"}, registry=registry)(runner)
        setattr(controller, name, runner)

    @kopf.on.create(f"daskcluster.{DASK}", registry=registry)
    async def daskcluster_create(**_): ...

    controller.handle_scheduler_service_status = handle_scheduler_service_status
    controller.daskcluster_create = daskcluster_create
    return controller


def handler_functions(registry: kopf.OperatorRegistry) -> set[str]:
    return {h.fn.__name__ for h in registry._changing.get_all_handlers()}


def test_upstreams_service_and_pod_watches_are_taken_out():
    registry = kopf.OperatorRegistry()
    controller = controller_like_upstream(registry)
    assert watches.watched_outside_dask(registry)  # upstream as it is would watch them
    watches.install(registry, controller)
    assert watches.watched_outside_dask(registry) == []
    assert handler_functions(registry) == {"daskcluster_create"}


@pytest.mark.parametrize("decorate", [
    lambda r: kopf.on.event("", "v1", "pods", registry=r),
    lambda r: kopf.on.create("apps", "v1", "deployments", registry=r),
    lambda r: kopf.timer("services", interval=5, registry=r),
    lambda r: kopf.on.resume(kopf.EVERYTHING, registry=r),
    lambda r: kopf.index("secrets", registry=r),
])
def test_an_operator_that_would_still_watch_pods_or_services_does_not_start(decorate):
    registry = kopf.OperatorRegistry()
    controller = controller_like_upstream(registry)

    async def new_upstream_handler(**_): ...
    decorate(registry)(new_upstream_handler)
    with pytest.raises(SystemExit) as refused:
        watches.install(registry, controller)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("pangeo-binder: refusing to start the Dask operator: it may "
                              "watch pods, Services and Deployments only in session "
                              "namespaces, and ")
    assert "new_upstream_handler" in message


def test_dask_objects_and_namespaces_may_be_watched():
    registry = kopf.OperatorRegistry()
    controller = controller_like_upstream(registry)

    async def hub_rights(**_): ...
    kopf.on.event("", "v1", "namespaces", registry=registry)(hub_rights)
    for plural in ("daskjobs", "daskworkergroups", "daskautoscalers"):
        kopf.timer(DASK, "v1", plural, interval=3, registry=registry)(hub_rights)
    # Webhooks answer what the API server sends them: nothing is watched for them.
    kopf.on.validate("", "v1", "pods", id="check-pod", registry=registry)(hub_rights)
    watches.install(registry, controller)
    assert watches.watched_outside_dask(registry) == []
