"""`build`: a source in, a smoke-tested (and optionally pushed) image out.

The pipeline: source -> checkout -> binder config and environment kind (the first of
pangeo_binder.builder.kinds.KINDS whose files are there) -> its lock, then the images it
is built on -> plan -> image -> push.
Images are built under a temporary tag and receive their final tag only after the
smoke test passes, so a broken image is never left tagged as good.
"""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..engine import Engine
from ..errors import BuildError, PangeoBinderError
from ..events import Emit, Event, Phase, ignore
from ..settings import Settings
from ..spec import LocalSource, Source, slug
from . import rebuild
from .bases import CONTENT_LABEL, SharedBases, registry_directory
from .fetch import checkout
from .kinds import Context, base_image_plans, choose, detect, python_image_for
from .lock import BASE_PYTHON, Lock, load_base_lock
from .plan import (
    HASH_LENGTH,
    ImagePlan,
    operator_image_plan,
    repo_image_plan,
    service_image_plan,
    write_context,
)
from .relax import RELAXED_LABEL, dropped_pins, label
from .sandbox import Sandbox

if TYPE_CHECKING:  # conda's modules load only for conda repositories
    from .conda import CondaLock


@dataclass(frozen=True)
class BuildResult:
    image: str
    content_hash: str
    cached: bool  # True when the image already existed and nothing was built
    revision: str | None
    pushed: bool = False


@contextmanager
def one_build_at_a_time(cache_dir: Path, content_hash: str, emit: Emit) -> Iterator[None]:
    """Hold the right to build `content_hash` on this machine: a concurrent build of the
    same content waits here for the first, then finds its image. An flock, which the
    kernel releases when its holder exits, however it exits (a crash, SIGKILL)."""
    path = cache_dir / "build-locks" / f"{content_hash}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            emit(Event(Phase.BUILDING, "Waiting for another build of the same content "
                                       f"({content_hash[:HASH_LENGTH]}) to finish"))
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def build_image(engine: Engine, plan: ImagePlan, settings: Settings, emit: Emit,
                labels: dict[str, str] | None = None) -> bool:
    """Build `plan` unless its image exists; return True when it was built. The image
    carries its content hash (a base pulled from a registry is checked against it, a
    build of the same content under another name adopts it), added only once the smoke
    test has passed: an untested candidate never looks like a built image."""
    if engine.image_id(plan.image) is not None:
        return False
    import secrets

    emit(Event(Phase.BUILDING, f"Building {plan.image}"))
    repository = plan.image.rpartition(":")[0]
    candidate = f"{repository}:candidate-{plan.tag}-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="pangeo-binder-build-") as context:
        write_context(plan, Path(context))
        try:
            engine.build(Path(context), plan.dockerfile, candidate, emit,
                         build_args=plan.build_args, labels={**plan.labels, **(labels or {})},
                         ca_bundle=settings.ca_bundle, target=plan.target)
            emit(Event(Phase.BUILDING, f"Smoke-testing {plan.image}"))
            result = engine.run(candidate, ["sh", "-c", plan.smoke_test])
            if result.exit_code != 0:
                last = (result.output.strip().splitlines() or ["no output"])[-1]
                raise BuildError(f"the built image failed its smoke test: {last}")
            emit(Event(Phase.BUILDING, f"Tagging {plan.image}"))
            engine.label(candidate, plan.image, {CONTENT_LABEL: plan.content_hash}, emit)
        finally:
            engine.remove(candidate)
    return True


def _labels(source_url: str, revision: str | None, base: Lock, lock_hash: str,
            repo_lock: Lock | None) -> dict[str, str]:
    relaxed = {RELAXED_LABEL: label(repo_lock)} if repo_lock and dropped_pins(repo_lock) else {}
    return {**relaxed,
        "org.opencontainers.image.source": source_url,
        "org.opencontainers.image.revision": revision or "",
        "org.opencontainers.image.created": datetime.now(UTC).isoformat(timespec="seconds"),
        "pangeo-binder.version": __version__,
        "pangeo-binder.base-lock-hash": base.digest,
        "pangeo-binder.lock-hash": lock_hash,
    }


def ensure_base(engine: Engine, plan: ImagePlan, settings: Settings, emit: Emit,
                shared: SharedBases | None, *, parent: ImagePlan | None = None,
                buildable: Callable[[], ImagePlan] | None = None) -> None:
    """Make the base image of `plan` present: here already, pulled from the registry
    under its content tag, or else built here (after its `parent` base). `buildable`
    gives the plan with what only a build needs (a conda environment's packages)."""
    if engine.image_id(plan.image) is not None:
        return
    # Bases are locked after the repository image and each before its parent: always
    # in that order, so concurrent builds cannot wait for each other in a cycle.
    with one_build_at_a_time(settings.cache_dir, plan.content_hash, emit):
        if engine.image_id(plan.image) is not None:  # made meanwhile by another build
            return
        if shared is not None and shared.pull(plan):
            return
        if parent is not None:
            ensure_base(engine, parent, settings, emit, shared)
        build_image(engine, buildable() if buildable else plan, settings, emit)


def resolver_sandbox(engine: Engine, settings: Settings, emit: Emit,
                     shared: SharedBases | None = None) -> Sandbox:
    """Where a repository's requirements are resolved: throwaway containers of the OS +
    Python image (which has uv), pulled or built when first needed."""
    def python_image() -> str:
        python = python_image_for(engine, settings, BASE_PYTHON, emit)
        ensure_base(engine, python, settings, emit, shared)
        return python.image

    return Sandbox(engine, python_image, settings.ca_bundle)


def build_base(settings: Settings, emit: Emit, *, operator: bool = False,
               service: str | None = None) -> str:
    """Build the base images when missing; return the pinned environment image's name,
    or with `operator` the Dask operator image built on it, or with `service` ("builder"
    or "hub") that pangeo-binder service image.

    Everything that runs Pangeo code (sessions, Dask workers, the Dask operator) uses this
    environment, so client, scheduler, workers and operator share one set of versions."""
    engine = Engine(settings.docker_cli)
    engine.check()
    plans = list(base_image_plans(engine, settings, emit))
    if service:
        plans = [plans[0], service_image_plan(plans[0], service, settings.os_image,
                                              settings.strict_base)]
    elif operator:
        plans.append(operator_image_plan(plans[-1]))
    for plan in plans:
        if not build_image(engine, plan, settings, emit):
            emit(Event(Phase.BUILDING, f"Cache hit: {plan.image} is already built"))
    return plans[-1].image


def _in_registry(image: str, engine: Engine) -> bool:
    from .registry import image_in_registry  # loads docker-py: not on a local cache hit

    return image_in_registry(image, engine)


def _reuse(engine: Engine, plan: ImagePlan, emit: Emit) -> bool:
    """Whether the image of `plan` is here: under its name, or as an identical image
    (its content label, which only a smoke-tested image carries, on an image built, not
    committed from a container) built under another name, which then gets this name
    too."""
    if engine.image_id(plan.image) is not None:
        emit(Event(Phase.BUILDING, f"Cache hit: {plan.image} is already built"))
        return True
    twin = engine.image_with_label(CONTENT_LABEL, plan.content_hash)
    if twin is None:
        return False
    engine.tag(twin, plan.image)
    emit(Event(Phase.BUILDING, f"Cache hit: tagged the identical image {twin[:19]}"))
    return True


def build(source: Source, settings: Settings, emit: Emit, *, push: bool = False,
          image_name: str | None = None, appendix: str = "",
          skip_if_pushed: bool = False) -> BuildResult:
    """Build the image of `source`; `image_name` overrides `<prefix><slug>[:hash]`;
    `appendix` is Dockerfile text added at the end (repo2docker's --appendix). With
    `push` and `skip_if_pushed`, an image the registry already holds under its content
    tag is taken as built, without being built or pushed here."""
    engine = Engine(settings.docker_cli)
    # An image named by its content tag can be found again from its inputs (rebuild).
    named = image_name is not None or bool(appendix.strip())
    emit, said = rebuild.remembering(emit)
    try:
        settings.check()
        image_name = image_name or settings.image_prefix + slug(source)
        # Bases are shared through the registry the image goes to (pangeo_binder.builder.bases).
        directory = registry_directory(image_name)
        shared = SharedBases(engine, directory, emit) if directory else None
        with checkout(source, emit) as files:
            config = detect(files, BASE_PYTHON, settings.relax)
            for warning in config.warnings:
                emit(Event(Phase.BUILDING, f"Warning: {warning}"))
            for notice in config.notices:
                emit(Event(Phase.BUILDING, f"Notice: {notice}"))
            if appendix.strip() and config.dockerfile:
                emit(Event(Phase.BUILDING, "Warning: the appendix is not added to a repository's "
                                           "own Dockerfile (nor is it by repo2docker)"))
            base = load_base_lock()
            ctx = Context(files, config, base, settings,
                          resolver_sandbox(engine, settings, emit, shared), emit)
            kind = choose(config, files, emit, settings.relax)
            locked = kind.lock(ctx)
            engine.check()  # after the inputs are known good: their errors come first
            environment = kind.environment(ctx, engine, locked)
            python, environment_image = environment.python, environment.image
            plan = repo_image_plan(files, config, environment, image_name, appendix,
                                   user=settings.notebook_user,
                                   allow_root=settings.allow_root)
            if push and skip_if_pushed and _in_registry(plan.image, engine):
                emit(Event(Phase.BUILT, f"Already in the registry: {plan.image}", image=plan.image))
                return BuildResult(image=plan.image, content_hash=plan.content_hash,
                                   cached=True, revision=files.revision)
            cached = _reuse(engine, plan, emit)
            if not cached:
                with one_build_at_a_time(settings.cache_dir, plan.content_hash, emit):
                    # The build this one waited for has made the image, or failed.
                    cached = _reuse(engine, plan, emit)
                    if not cached:
                        if python and environment_image:
                            ensure_base(engine, environment_image, settings, emit, shared,
                                        parent=python, buildable=environment.buildable)
                        build_image(engine, plan, settings, emit,
                                    _labels(files.source_url, files.revision, base,
                                            environment.lock_digest, environment.repo_lock))
            revision = files.revision
            if isinstance(source, LocalSource) and not push and not named:
                rebuild.record(files, settings, engine, plan.image, said)
        if push:
            if shared is not None and python and environment_image and not cached:
                for base_plan in (python, environment_image):  # for the next fresh node
                    shared.publish(base_plan)
            emit(Event(Phase.PUSHING, f"Pushing {plan.image}"))
            engine.push(plan.image, emit)
    except BaseException as exc:
        emit(Event(Phase.FAILED, str(exc) or type(exc).__name__))
        raise
    emit(Event(Phase.BUILT, f"Built {plan.image}", image=plan.image))
    return BuildResult(image=plan.image, content_hash=plan.content_hash, cached=cached,
                       revision=revision, pushed=push)


def lock_repository(source: Source, settings: Settings) -> Lock | CondaLock | None:
    """`pangeo-binder lock SOURCE`: the lock a build of `source` would make (a pip lock
    or a conda lock), or None when the repository has nothing to lock. Asks the Docker
    engine for nothing but the resolver's sandbox."""
    settings.check()
    with checkout(source, ignore) as files:
        config = detect(files, BASE_PYTHON, settings.relax)
        if config.dockerfile:
            raise PangeoBinderError(f"{config.dockerfile} builds as is: nothing to lock")
        sandbox = resolver_sandbox(Engine(settings.docker_cli), settings, ignore)
        ctx = Context(files, config, load_base_lock(), settings, sandbox, ignore)
        return choose(config, files, ignore, settings.relax).lock(ctx)
