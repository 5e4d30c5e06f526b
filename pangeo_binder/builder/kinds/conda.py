"""A conda environment: an environment.yml solved by conda, or a shipped conda-lock.yml,
solved with py-rattler and linked into /srv/conda (pangeo_binder.builder.conda).

An environment.yml alone is tried on PyPI first (the kind before this one,
`conda_via_pypi`), which hands it over here when it asks for conda, has a dependency
PyPI has no faithful equivalent of, or asks for a Python the PyPI path does not build
(`python=3.6`); when conda cannot install such an old environment either, the build
ends in one line naming what cannot be had (pangeo_binder.builder.relax), and `--relax`
builds it on the base's Python instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...engine import Engine
from ...errors import BinderConfigError, DockerError, LockError
from ...events import Emit, Event, Phase
from ..binder_files import BinderConfig, ignored_notice
from ..fetch import Checkout
from ..lock import BASE_PYTHON
from ..plan import CONDA_PYTHON, Environment, ImagePlan, conda_environment_image_plan
from .common import Context, Detection, Installed, python_image_for

if TYPE_CHECKING:  # conda's modules load only for conda repositories
    from ..conda import CondaLock

NAME = "conda"
ENVIRONMENT_FILES = ("environment.yml", "environment.yaml")
CONDA_LOCK = "conda-lock.yml"
FILES = (*ENVIRONMENT_FILES, CONDA_LOCK)
# The image's copy of the lock its environment was linked from.
INSTALLED = Installed("conda", "/srv/conda", (CONDA_LOCK,))


def detect(found: Detection) -> BinderConfig | None:
    environments = [path for name in ENVIRONMENT_FILES if (path := found.files.found(name))]
    conda_lock = found.files.found(CONDA_LOCK)
    if not (environments or conda_lock):
        return None
    return environment_config(found, environments, conda_lock)


def environment_config(found: Detection, environments: list[str],
                       conda_lock: str | None) -> BinderConfig:
    """The config of a conda environment file (and/or a conda-lock.yml): the pip files,
    runtime.txt and the root package are ignored, as repo2docker ignores them."""
    if len(environments) > 1:
        raise BinderConfigError(f"both {environments[0]} and {environments[1]} exist; "
                                "keep one of them")
    runtime = found.files.found("runtime.txt")
    ignored = [*found.ignored(), *([runtime] if runtime else []), *found.files.root_package]
    notices = []
    if ignored:
        notices.append(ignored_notice(
            environments[0] if environments else conda_lock, ignored,  # type: ignore[arg-type]
            "repo2docker's order; the conda environment decides the packages and the "
            "Python: list pip packages under pip: in the environment file"))
    return found.files.config(
        conda_environment=environments[0] if environments else None,
        conda_lock=conda_lock, notices=notices)


def select(config: BinderConfig, checkout: Checkout, emit: Emit,
           relax: bool = False) -> CondaEnvironment:
    return unrelaxed(relax, config.conda_lock or CONDA_LOCK, emit)


def unrelaxed(relax: bool, name: str, emit: Emit) -> CondaEnvironment:
    """The conda kind of `name`, which --relax leaves as it is (said)."""
    if relax:
        emit(Event(Phase.BUILDING, f"Notice: --relax leaves {name} as it is: it relaxes "
                                   "what is installed from PyPI"))
    return CondaEnvironment()


class CondaEnvironment:
    """`as_pypi`: the PyPI translation of an environment.yml that came here only for its
    Python, which the PyPI path does not build."""

    def __init__(self, as_pypi: Any = None) -> None:
        self.as_pypi = as_pypi

    def lock(self, ctx: Context) -> CondaLock:
        from ..conda import resolve_conda_lock

        try:
            return resolve_conda_lock(ctx.checkout, ctx.config.conda_environment,
                                      ctx.config.conda_lock, ctx.settings, ctx.emit,
                                      ctx.sandbox)
        except LockError as exc:
            if self.as_pypi is None:
                raise
            raise _cannot_rebuild(ctx, self.as_pypi, str(exc)) from None

    def environment(self, ctx: Context, engine: Engine, locked: CondaLock) -> Environment:
        from ..conda import fetch_packages

        python = python_image_for(engine, ctx.settings, BASE_PYTHON, ctx.emit)

        def buildable() -> ImagePlan:
            # The packages are fetched (from their locked URLs, hash-checked) only when
            # the environment image is neither here nor in the registry.
            ctx.emit(Event(Phase.BUILDING,
                           f"Fetching {len(locked.packages)} locked conda packages"))
            return conda_environment_image_plan(
                python, locked, fetch_packages(locked, ctx.settings.cache_dir, ctx.emit))

        return Environment(python=python,
                           image=conda_environment_image_plan(python, locked, {}),
                           lock_digest=locked.digest, python_path=CONDA_PYTHON,
                           buildable=buildable)


def _cannot_rebuild(ctx: Context, translation: Any, conda_failure: str) -> LockError:
    """An old environment.yml neither path can install: which of its pins PyPI has no
    wheel of (asked of uv, in the sandbox), in one line with the way out."""
    from ..relax import cannot_rebuild, pins_without_wheels

    ctx.emit(Event(Phase.BUILDING, f"Checking which pins of {translation.name} PyPI has "
                                   "wheels of (in a sandbox container)"))
    written = {pip: conda for conda, pip in translation.mapped}
    try:
        missing = pins_without_wheels(ctx.sandbox, [pip for _, pip in translation.mapped])
    except DockerError as exc:  # the line still says what was tried, and what was not
        return cannot_rebuild(translation.name, translation.python_spec, conda_failure, [],
                              unchecked=str(exc))
    return cannot_rebuild(translation.name, translation.python_spec, conda_failure,
                          [written[pip] for pip in missing])
