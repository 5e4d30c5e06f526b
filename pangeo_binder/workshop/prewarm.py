"""`prewarm`: a workshop's images built, pushed and pulled onto every session node, and
seats held, before anyone clicks.

Functions take a kr8s API client (`kube.connect`). Everything lives in the workshop's
namespace `pangeo-prewarm-NAME` (plus one
PriorityClass of that name), so `stop` removes exactly what `prewarm` made. Running it
again updates the image list and the seats in place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from ..builder.pipeline import build
from ..errors import PangeoBinderError
from ..events import Emit, Event, Phase, ignore
from ..kube import KubernetesError, delete_if_present, kubernetes_errors, wait_for
from ..settings import Settings
from ..waiting import Waiting, wait_until
from .config import Workshop
from .objects import IMAGES_ANNOTATION, PULLER, SEATS, pool_objects

# Waiting reasons of an image that will not arrive by waiting longer.
_CANNOT_PULL = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}


@dataclass(frozen=True)
class BuiltRepo:
    source: str
    image: str | None  # None when the build failed
    cached: bool = False
    error: str | None = None

    def summary_line(self) -> str:
        """Its line of `build --from`'s summary: FAILED, cached or built; source; image."""
        state = "FAILED" if self.image is None else ("cached" if self.cached else "built")
        return f"{state:>7}  {self.source}  {self.image or self.error}"


def build_workshop(workshop: Workshop, settings: Settings, emit: Emit,
                   parallel: int = 2, appendix: str = "") -> list[BuiltRepo]:
    """Build and push every repository of the workshop, `parallel` at a time, each with
    `appendix` at its end. An image already in the registry (same content hash) is
    neither built nor pushed; one built here before is only pushed. One failure does
    not stop the others; the caller decides what a failure means."""
    settings = settings.with_overrides(image_prefix=workshop.image_prefix,
                                       strict_base=workshop.strict_base or None)

    def one(source) -> BuiltRepo:
        def tagged(event: Event) -> None:
            emit(Event(event.phase, f"{source.display}: {event.message}", event.detail))

        try:
            result = build(source, settings, tagged, push=True, appendix=appendix,
                           skip_if_pushed=True)
        except PangeoBinderError as exc:
            return BuiltRepo(source.display, None, error=str(exc))
        return BuiltRepo(source.display, result.image, cached=result.cached)

    # The engine client's modules are imported where they are first used; threads that
    # first use them together could see one half-imported (docker.auth), so they are
    # imported here, before the threads start.
    import docker.auth  # noqa: F401

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(one, workshop.repos))


@dataclass(frozen=True)
class NodeStatus:
    node: str
    pulled: int  # images on the node
    total: int


@dataclass(frozen=True)
class PoolStatus:
    workshop: str
    images: tuple[str, ...]
    nodes: tuple[NodeStatus, ...]
    nodes_wanted: int  # nodes the DaemonSet should run on
    seats_held: int
    seats_wanted: int
    until: datetime | None
    problems: tuple[str, ...] = ()  # "node: image: reason" of pulls that cannot succeed

    @property
    def nodes_ready(self) -> int:
        return sum(node.pulled == node.total for node in self.nodes)

    @property
    def ready(self) -> bool:
        return (self.nodes_wanted > 0 and self.nodes_ready == self.nodes_wanted
                and len(self.nodes) == self.nodes_wanted)

    def summary(self) -> str:
        until = f", until {self.until.isoformat()}" if self.until else ""
        return (f"{self.workshop}: {len(self.images)} image(s) on {self.nodes_ready}/"
                f"{self.nodes_wanted} node(s), {self.seats_held}/{self.seats_wanted} seat(s) "
                f"held{until}")


@cache
def _priority_class():
    # kr8s has no class of its own for PriorityClass; this registers one, so that
    # object_from_spec finds it too.
    from kr8s.objects import new_class

    return new_class("PriorityClass", version="scheduling.k8s.io/v1", namespaced=False,
                     plural="priorityclasses")


def _apply(api, manifest: dict) -> None:
    """Create the object, or bring an existing one to the manifest (lists replaced, so a
    shorter image list really is shorter)."""
    from kr8s.objects import object_from_spec

    _priority_class()
    obj = object_from_spec(dict(manifest), api=api)
    with kubernetes_errors(f"cannot apply {manifest['kind']} {manifest['metadata']['name']}"):
        if obj.exists():
            obj.patch({k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")},
                      type="merge")
        else:
            obj.create()


def pool_manifests(workshop: Workshop, images: Sequence[str]) -> list[dict]:
    if not images:
        raise PangeoBinderError(f"{workshop.name}: no image to prewarm")
    return pool_objects(workshop, images)


def start_pool(api, workshop: Workshop, images: Sequence[str], emit: Emit,
               timeout: float = 1800) -> PoolStatus:
    """Create or update the pool and wait until every matching node has every image."""
    from kr8s.objects import Deployment, Namespace

    manifests = pool_manifests(workshop, images)
    emit(Event(Phase.LAUNCHING, f"Prewarming {len(images)} image(s) for {workshop.name} "
                                f"in namespace {workshop.namespace}"))
    with kubernetes_errors(f"cannot read namespace {workshop.namespace}"):
        created = not Namespace(workshop.namespace, api=api).exists()
    try:
        for manifest in manifests:
            _apply(api, manifest)
        if not workshop.seats.count:  # seats dropped from the file: drop them too
            with kubernetes_errors("cannot remove the seats"):
                delete_if_present(Deployment(SEATS, namespace=workshop.namespace, api=api))
        return _wait_for_pool(api, workshop, images, emit, timeout)
    except BaseException:
        if created:  # a first prewarm that failed leaves nothing behind
            stop_pool(api, workshop, ignore)
        raise


def _wait_for_pool(api, workshop: Workshop, images: Sequence[str], emit: Emit,
                   timeout: float) -> PoolStatus:
    said: list[str] = []

    def tell(line: str) -> None:  # each count once, as it changes, the last one too
        if line not in said[-1:]:
            said.append(line)
            emit(Event(Phase.LAUNCHING, f"images pulled per node: {line}"))

    def pulled() -> PoolStatus | Waiting:
        status = pool_status(api, workshop)
        line = "; ".join(f"{n.node}: {n.pulled}/{n.total}" for n in status.nodes) or \
            "waiting for the puller pods"
        tell(line)
        if status.problems:
            raise KubernetesError(f"cannot prewarm {status.problems[0]}; fix the workshop "
                                  "file and run prewarm again")
        if status.ready and tuple(status.images) == tuple(images):
            return status
        return Waiting(line)

    status = wait_until(pulled, timeout, every=2, tell=tell,
                        timed_out=lambda line: KubernetesError(
                            f"not every node pulled the images in {timeout:.0f}s ({line})"))
    emit(Event(Phase.READY, status.summary()))
    return status


def pool_status(api, workshop: Workshop) -> PoolStatus:
    """Nodes with every image / nodes wanted, and seats held / wanted."""
    from kr8s.objects import DaemonSet, Deployment

    ns = workshop.namespace
    with kubernetes_errors(f"cannot read the pool of {workshop.name}"):
        puller = DaemonSet(PULLER, namespace=ns, api=api)
        if not puller.exists():
            raise KubernetesError(f"{workshop.name} is not prewarmed (no pool in "
                                  f"namespace {ns}); run pangeo-binder prewarm first")
        puller.refresh()
        images = tuple(json.loads(puller.annotations.get(IMAGES_ANNOTATION, "[]")))
        generation = puller.raw["metadata"].get("generation")
        daemon = puller.raw.get("status", {})
        nodes, problems = [], []
        current = daemon.get("observedGeneration") == generation
        for pod in api.get("pods", namespace=ns,
                           label_selector="app.kubernetes.io/component=puller"):
            if pod.metadata.get("deletionTimestamp") or not current:
                continue
            inits = pod.raw.get("spec", {}).get("initContainers", [])
            if [c["image"] for c in inits] != list(images):
                continue  # a pod of the previous image list
            node = pod.spec.get("nodeName") or "(unscheduled)"
            states = pod.raw.get("status", {}).get("initContainerStatuses", [])
            done = sum(1 for c in states
                       if c.get("state", {}).get("terminated", {}).get("exitCode") == 0)
            nodes.append(NodeStatus(node, done, len(images)))
            for container in states:
                waiting = container.get("state", {}).get("waiting", {})
                if waiting.get("reason") in _CANNOT_PULL:
                    problems.append(f"{node}: {container['image']}: {waiting['reason']} "
                                    f"({waiting.get('message', '')[:200]})")
        seats = Deployment(SEATS, namespace=ns, api=api)
        held = wanted = 0
        if seats.exists():
            seats.refresh()
            wanted = seats.raw["spec"].get("replicas", 0)
            held = seats.raw.get("status", {}).get("readyReplicas", 0) or 0
    return PoolStatus(workshop.name, images, tuple(sorted(nodes, key=lambda n: n.node)),
                      daemon.get("desiredNumberScheduled", 0), held, wanted, workshop.until,
                      tuple(problems))


def stop_pool(api, workshop: Workshop, emit: Emit, timeout: float = 180) -> bool:
    """Remove the pool: its namespace (puller, seats) and its PriorityClass. False when
    there was nothing to remove."""
    from kr8s.objects import Namespace

    namespace = Namespace(workshop.namespace, api=api)
    with kubernetes_errors(f"cannot remove the pool of {workshop.name}"):
        removed = delete_if_present(namespace)
        removed = delete_if_present(_priority_class()(workshop.namespace, api=api)) or removed
        wait_for(lambda: not namespace.exists(), timeout,
                 f"namespace {workshop.namespace} was not gone in {timeout:.0f}s")
    if removed:
        emit(Event(Phase.READY, f"Removed the pool of {workshop.name}"))
    return removed

