"""What the environment kinds share: the `Context` they work from, the `Kind` protocol,
what a kind module's `detect` is given (`Detection`), the Python of the pip kinds, and
the images every kind but the repository's own Dockerfile is built on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Protocol

from ...engine import Engine
from ...errors import BinderConfigError, DockerError
from ...events import Emit, Event, Phase
from ...settings import Settings
from ..binder_files import (
    PYTHON_VERSIONS,
    BinderConfig,
    BinderFiles,
    ignored_notice,
    parse_runtime_txt,
    python_for,
    read_text,
)
from ..fetch import Checkout
from ..lock import BASE_PYTHON, Lock
from ..plan import (
    Environment,
    ImagePlan,
    environment_image_plan,
    python_image_plan,
    standalone_environment_image_plan,
)
from ..pythons import python_source
from ..sandbox import Sandbox


@dataclass(frozen=True)
class Context:
    """What every kind works from."""

    checkout: Checkout
    config: BinderConfig
    base: Lock
    settings: Settings
    sandbox: Sandbox
    emit: Emit


class Kind(Protocol):
    def lock(self, ctx: Context) -> Any:
        """The repository's lock (what `pangeo-binder lock` exports), or None."""

    def environment(self, ctx: Context, engine: Engine, locked: Any) -> Environment:
        """The images the repository's image is built on, from its lock."""


@dataclass(frozen=True)
class Installed:
    """The environment an image of a kind carries, as `pangeo-binder verify` finds it:
    the lock files in the image's /srv/pangeo-binder that mark it (patterns), unless one
    of `unless` is there too, and where it is installed."""

    name: str  # "pip" or "conda": the probe's name of the environment
    prefix: str
    lock_files: tuple[str, ...]
    unless: tuple[str, ...] = ()

    def marks(self, names: Iterable[str]) -> bool:
        names = list(names)
        return (any(fnmatchcase(name, pattern) for name in names for pattern in self.lock_files)
                and not any(name in self.unless for name in names))


# The venv of every pip kind: the base's environment.lock, a repository's repo.lock. A
# conda image carries its installer's installer.lock too: its conda-lock.yml decides.
PIP_VENV = Installed("pip", "/srv/venv", ("*.lock",), unless=("conda-lock.yml",))


@dataclass(frozen=True)
class Detection:
    """What a kind module's `detect` reads: the binder files, the base's Python, whether
    --relax was given, and the files of the kinds after it in KINDS (which it reports
    as ignored when it is used)."""

    files: BinderFiles
    base_python: str
    relax: bool = False
    later: tuple[str, ...] = ()

    def ignored(self) -> list[str]:
        """The files of the kinds after this one that the repository has."""
        return [path for name in self.later if (path := self.files.found(name))]


def pip_config(found: Detection, source: str | None, ignored: list[str],
               notices: tuple[str, ...] = (),
               python_spec: Callable[[], tuple[str | None, str, dict[str, Any]]] | None = None,
               **fields: Any) -> BinderConfig:
    """The config of a kind installed with pip into the venv: `source` used and the
    files `ignored` said, runtime.txt read, and the Python from it and from what
    `python_spec` reads of the source (its requires-python, where it came from, and more
    fields of the config)."""
    notices = (*notices, *((ignored_notice(source, ignored),) if source and ignored else ()))
    warnings = []
    if requirements3 := found.files.found("requirements3.txt"):
        warnings.append(f"{requirements3} is ignored: repo2docker reads it only beside "
                        "runtime.txt python-2.7; list the packages in requirements.txt")
    runtime = found.files.found("runtime.txt")
    runtime_version = (parse_runtime_txt(read_text(found.files.checkout, runtime),
                                         found.base_python, runtime, any_python=found.relax)
                       if runtime else None)
    spec, spec_from, more = python_spec() if python_spec else (None, "", {})
    python_version, python_from = python_for(spec, spec_from, runtime_version, runtime,
                                             found.base_python)
    return found.files.config(warnings=warnings, notices=notices,
                              python_version=python_version, python_from=python_from,
                              **fields, **more)


def leave_locked(ctx: Context, locked: str) -> None:
    """--relax on a kind that installs a lock as it is: said, or refused when the Python
    it was read for (see binder_files.parse_runtime_txt) is one no source has."""
    config = ctx.config
    if config.python_version not in (None, *PYTHON_VERSIONS):  # read only for --relax
        raise BinderConfigError(
            f"{config.python_from} asks for python-{config.python_version}, which no "
            f"source has, and --relax leaves {locked} as it is (it relaxes "
            "requirements files and environment.yml)")
    ctx.emit(Event(Phase.BUILDING, f"Notice: --relax leaves {locked} as it is: it relaxes "
                                   "requirements files and environment.yml"))


def pip_environment(ctx: Context, engine: Engine, lock: Lock | None, python: str,
                    apt_packages: tuple[str, ...] = ()) -> Environment:
    """The Pangeo base with `lock` as its extras, or `lock`'s own standalone environment
    on the OS + Python image of `python`."""
    if lock is None or not (lock.standalone(ctx.base) or python != BASE_PYTHON):
        python_plan = python_image_for(engine, ctx.settings, BASE_PYTHON, ctx.emit)
        return Environment(python=python_plan, image=environment_image_plan(python_plan),
                           lock_digest=(lock or ctx.base).digest, repo_lock=lock,
                           apt_packages=apt_packages)
    python_plan = python_image_for(engine, ctx.settings, python, ctx.emit)
    return Environment(python=python_plan,
                       image=standalone_environment_image_plan(python_plan, lock),
                       lock_digest=lock.digest, repo_lock=lock, standalone=True,
                       apt_packages=apt_packages)


def os_image_id(engine: Engine, os_image: str, emit: Emit,
                setting: str = "PANGEO_BINDER_OS_IMAGE") -> str:
    """The engine's id of `os_image`, pulled when missing."""
    image_id = engine.image_id(os_image)
    if image_id is None:
        emit(Event(Phase.BUILDING, f"Pulling the OS image {os_image}"))
        if not engine.pull(os_image) or (image_id := engine.image_id(os_image)) is None:
            raise DockerError(
                f"OS image {os_image} is not on this machine and cannot be pulled; set "
                f"{setting} (scripts/setup-docker makes one with debootstrap)"
            )
    return image_id


def python_image_for(engine: Engine, settings: Settings, python: str,
                     emit: Emit) -> ImagePlan:
    """The OS + Python image of Python `python`, from the source pythons.python_source
    names: a Debian suite's package (the OS image's own suite, else another suite's OS
    image), else uv's managed Python on the OS image."""
    source = python_source(settings, python)
    image_id = os_image_id(engine, source.os_image, emit, source.setting)
    if source.managed:
        emit(Event(Phase.BUILDING, f"Notice: Python {python} is in no Debian suite: it is "
                                   "uv's managed Python, downloaded during the build"))
    return python_image_plan(source.os_image, image_id, python, managed=source.managed)


def base_image_plans(engine: Engine, settings: Settings,
                     emit: Emit) -> tuple[ImagePlan, ImagePlan]:
    """The plans of the OS + Python image and of the pinned Pangeo environment image."""
    python = python_image_for(engine, settings, BASE_PYTHON, emit)
    return python, environment_image_plan(python)
