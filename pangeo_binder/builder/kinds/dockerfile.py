"""The repository's own Dockerfile: built as is, on nothing of ours. repo2docker's first
buildpack: with a Dockerfile, every other binder file is ignored."""

from __future__ import annotations

from ...engine import Engine
from ...events import Emit, Event, Phase
from ..binder_files import BinderConfig, ignored_notice
from ..fetch import Checkout
from ..plan import Environment
from .common import Context, Detection, Installed

NAME = "dockerfile"
FILES = ("Dockerfile",)
INSTALLED: Installed | None = None  # no lock: nothing `verify` can compare it with


def detect(found: Detection) -> BinderConfig | None:
    dockerfile = found.files.found("Dockerfile")
    if dockerfile is None:
        return None
    ignored = found.ignored()
    return BinderConfig(
        binder_dir=found.files.binder_dir, dockerfile=dockerfile,
        ignore_patterns=found.files.ignore_patterns,
        warnings=(f"{dockerfile} is built as is: it bypasses the pinned Pangeo "
                  "environment and its reproducibility guarantees",),
        notices=(ignored_notice(dockerfile, ignored),) if ignored else (),
    )


def select(config: BinderConfig, checkout: Checkout, emit: Emit,
           relax: bool = False) -> RepositoryDockerfile:
    if relax:
        emit(Event(Phase.BUILDING, f"Notice: --relax leaves {config.dockerfile} as it "
                                   "is: it builds as written"))
    return RepositoryDockerfile()


class RepositoryDockerfile:
    def lock(self, ctx: Context) -> None:
        return None

    def environment(self, ctx: Context, engine: Engine, locked: None) -> Environment:
        return Environment(python=None, image=None, lock_digest=ctx.base.digest)
