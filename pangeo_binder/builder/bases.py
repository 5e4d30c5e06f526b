"""Base images shared through the registry, named by their content tags.

The OS + Python image, the pinned Pangeo environment (239 packages) and a conda
repository's environment are built once and named by the hash of their inputs. Every
fresh build node (a BinderHub build pod on a new node, a dind builder's empty engine)
would otherwise rebuild them inside its first build. So a build whose image names a
registry looks for them there first, under the same directory as the image:

    registry.example.org/binder/pangeo-gh-org-repo-abc:sha       (the image asked for)
    registry.example.org/binder/pangeo-binder-base-python:<tag>
    registry.example.org/binder/pangeo-binder-base-pangeo-notebook:<tag>
    registry.example.org/binder/pangeo-binder-base-conda-environment:<tag>

and a build that may push puts there the bases its image was built on. The tag is the
content tag of the local name (`pangeo-binder/python:<tag>`), and a pulled image must
carry the full content hash in its `pangeo-binder.content-hash` label, or it is not
used. That proves it is the image of those inputs only as far as the registry is
trusted: anyone who can push there can push a base every later build runs on, exactly as
they could push the repository images themselves. Use the operator's own registry.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ..credentials import image_auth, redact
from ..errors import PangeoBinderError
from ..events import Emit, Event, Phase

if TYPE_CHECKING:
    import docker.errors

    from ..engine import Engine
    from .plan import ImagePlan

CONTENT_LABEL = "pangeo-binder.content-hash"
BASE_NAME_PREFIX = "pangeo-binder-base-"


def registry_directory(image: str) -> str | None:
    """`registry.example.org/binder/` of `registry.example.org/binder/name[:tag]`; None
    when the image names no registry host (a local name, or Docker Hub implied)."""
    last = image.rsplit("/", 1)[-1]
    name = image.rsplit(":", 1)[0] if ":" in last else image
    host, slash, _ = name.partition("/")
    if not slash or not ("." in host or ":" in host or host == "localhost"):
        return None
    return name.rpartition("/")[0] + "/"


def shared_name(plan: ImagePlan, directory: str) -> str:
    """The registry name of a base plan: `pangeo-binder/python:<tag>` under
    `registry.example.org/binder/` is
    `registry.example.org/binder/pangeo-binder-base-python:<tag>`."""
    repository, _, tag = plan.image.rpartition(":")
    return f"{directory}{BASE_NAME_PREFIX}{repository.rpartition('/')[2]}:{tag}"


def _reason(exc: docker.errors.APIError) -> str:
    text = redact(" ".join(str(exc.explanation or exc).split()))
    return text if len(text) <= 160 else text[:157] + "..."


class SharedBases:
    """The bases under one registry directory: pulled when missing here, pushed when
    the registry lacks them and the build may push."""

    def __init__(self, engine: Engine, directory: str, emit: Emit) -> None:
        self.engine = engine
        self.directory = directory
        self.emit = emit

    def name(self, plan: ImagePlan) -> str:
        return shared_name(plan, self.directory)

    def pull(self, plan: ImagePlan) -> bool:
        """Pull `plan`'s base under its content tag and give it its local name; False,
        with one line saying why, when the registry does not have it (or is down, or
        has something else under that tag)."""
        import docker.errors

        remote = self.name(plan)
        repository, _, tag = remote.rpartition(":")
        self.emit(Event(Phase.BUILDING, f"Pulling the base image {remote}"))
        try:
            image = self.engine.client.images.pull(repository, tag=tag,
                                                   auth_config=image_auth(remote))
        except docker.errors.APIError as exc:
            self.emit(Event(Phase.BUILDING, f"Base image {remote} not pulled "
                                            f"({_reason(exc)}); building it here"))
            return False
        found = (image.labels or {}).get(CONTENT_LABEL)
        if found != plan.content_hash:
            with contextlib.suppress(docker.errors.APIError):
                self.engine.client.images.remove(remote)
            self.emit(Event(Phase.BUILDING, f"Base image {remote} is not the image of "
                                            f"this content (its content hash is {found}); "
                                            "building it here"))
            return False
        self.engine.tag(remote, plan.image)
        return True

    def _in_registry(self, remote: str) -> bool:
        import docker.errors

        try:
            self.engine.client.images.get_registry_data(remote, auth_config=image_auth(remote))
        except docker.errors.NotFound:
            return False
        return True

    def publish(self, plan: ImagePlan) -> None:
        """Push `plan`'s base when it is here and the registry lacks it. A failure is a
        warning: the build's own image does not need it, only later fresh nodes do."""
        import docker.errors

        remote = self.name(plan)
        try:
            image = self.engine.client.images.get(plan.image)
        except docker.errors.ImageNotFound:
            return
        try:
            if self._in_registry(remote):
                return
            if (image.labels or {}).get(CONTENT_LABEL) != plan.content_hash:
                # Built by an earlier pangeo-binder, before bases carried their content
                # hash: add the label (a configuration change, no new layer).
                self.engine.label(plan.image, plan.image,
                                  {CONTENT_LABEL: plan.content_hash}, lambda event: None)
            self.engine.tag(plan.image, remote)
            self.emit(Event(Phase.PUSHING, f"Pushing the base image {remote}"))
            self.engine.push(remote, self.emit)
        except (PangeoBinderError, docker.errors.APIError) as exc:
            reason = _reason(exc) if isinstance(exc, docker.errors.APIError) else redact(str(exc))
            self.emit(Event(Phase.PUSHING, f"Warning: the base image {remote} was not "
                                           f"pushed ({reason}); fresh nodes will build it"))
