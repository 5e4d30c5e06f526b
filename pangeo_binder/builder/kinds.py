"""Environment kinds: how a repository's environment is locked, and what its image is
built on.

The binder files choose one kind (`choose`). A kind first locks the repository's inputs
(`lock`), before the Docker engine is asked for anything, so that a bad pin is reported
before "Docker is not running"; then it names the images the repository's image is built
on (`environment`):

- RepositoryDockerfile: the repository's own Dockerfile, built as is, on nothing of ours.
- PipEnvironment: requirements.txt, a root package, runtime.txt, or nothing at all. Extras
  on the Pangeo base; or a standalone environment, when the pins or the Python move the
  repository off the base (pangeo_binder.builder.lock says when).
- CondaViaPyPI: an environment.yml whose every dependency has a faithful PyPI equivalent
  (pangeo_binder.builder.conda_pypi), locked with uv as a requirements.txt would be: seconds
  instead of a conda solve, and the base's layers when it fits the base.
- CondaEnvironment: any other environment.yml, or a conda-lock.yml, solved with
  py-rattler and linked into /srv/conda (pangeo_binder.builder.conda). An environment.yml
  PyPI could install but for its Python (`python=3.6`) comes here too; when conda cannot
  install it either, the build ends in one line naming what cannot be had
  (pangeo_binder.builder.relax), and `--relax` builds it on the base's Python instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from packaging.specifiers import SpecifierSet

from ..engine import Engine
from ..errors import BinderConfigError, DockerError, LockError
from ..events import Emit, Event, Phase
from ..settings import Settings
from ..yaml_file import load_yaml
from .detect import PYTHON_VERSIONS, BinderConfig, read_text
from .fetch import Checkout
from .lock import BASE_PYTHON, Lock, PipInputs, resolve_pip_lock, resolve_repo_lock
from .plan import (
    CONDA_PYTHON,
    Environment,
    ImagePlan,
    conda_environment_image_plan,
    environment_image_plan,
    python_image_plan,
    standalone_environment_image_plan,
)
from .pythons import python_source
from .sandbox import Sandbox

if TYPE_CHECKING:  # conda's modules load only for conda repositories
    from .conda import CondaLock

# A repository that wants its environment.yml solved by conda, even where PyPI has every
# package, says so in a comment of the file (conda itself ignores comments).
CONDA_MARKER = "# pangeo-binder: conda"


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


def choose(config: BinderConfig, checkout: Checkout, emit: Emit,
           relax: bool = False) -> Kind:
    """The kind of a repository's environment, from its binder files; with `relax`, an
    environment.yml PyPI can install is relaxed onto the base's Python
    (pangeo_binder.builder.relax)."""
    if config.dockerfile:
        if relax:
            emit(Event(Phase.BUILDING, f"Notice: --relax leaves {config.dockerfile} as it "
                                       "is: it builds as written"))
        return RepositoryDockerfile()
    if config.conda_environment and not config.conda_lock:
        from .conda_pypi import PypiTranslation, translate

        name = config.conda_environment
        text = read_text(checkout, name)
        if CONDA_MARKER in text:
            emit(Event(Phase.BUILDING, f"{name} asks for conda ({CONDA_MARKER!r})"))
            return _unrelaxed_conda(relax, name, emit)
        # The file as written (its prefix and name tell a `conda env export`), not as the
        # conda path parses it: py-rattler's strict parser refuses an export's
        # name=version=build lines, which conda itself reads as name ==version build.
        translation = translate(load_yaml(text, name, BinderConfigError), name)
        if not isinstance(translation, PypiTranslation):
            emit(Event(Phase.BUILDING, f"Notice: {translation.notice()}; solving it with "
                                       "conda"))
            return _unrelaxed_conda(relax, name, emit)
        if relax:
            return CondaViaPyPI(translation, BASE_PYTHON, relax=True)
        python = _pip_python(translation)
        if python is None:
            emit(Event(Phase.BUILDING, f"Notice: {name} asks for {translation.python_spec}, "
                                       "which the PyPI path does not build (Python "
                                       f"{PYTHON_VERSIONS[0]} to {PYTHON_VERSIONS[-1]}); "
                                       "solving it with conda"))
            return CondaEnvironment(as_pypi=translation)
        return CondaViaPyPI(translation, python)
    if config.conda:
        return _unrelaxed_conda(relax, config.conda_lock or "conda-lock.yml", emit)
    return PipEnvironment(relax)


def _unrelaxed_conda(relax: bool, name: str, emit: Emit) -> CondaEnvironment:
    if relax:
        emit(Event(Phase.BUILDING, f"Notice: --relax leaves {name} as it is: it relaxes "
                                   "what is installed from PyPI"))
    return CondaEnvironment()


class RepositoryDockerfile:
    def lock(self, ctx: Context) -> None:
        return None

    def environment(self, ctx: Context, engine: Engine, locked: None) -> Environment:
        return Environment(python=None, image=None, lock_digest=ctx.base.digest)


class PipEnvironment:
    def __init__(self, relax: bool = False) -> None:
        self.relax = relax

    def lock(self, ctx: Context) -> Lock | None:
        return resolve_repo_lock(ctx.checkout, ctx.config, ctx.base, ctx.settings.cache_dir,
                                 ctx.emit, ctx.sandbox, strict=ctx.settings.strict_base,
                                 relax=self.relax)

    def environment(self, ctx: Context, engine: Engine, locked: Lock | None) -> Environment:
        # --relax drops the Python of what it relaxes; a lock is used as it is.
        relaxed = self.relax and not (ctx.config.lock_file or ctx.config.python_project)
        python = BASE_PYTHON if relaxed else ctx.config.python_version or BASE_PYTHON
        return pip_environment(ctx, engine, locked, python)


class CondaViaPyPI:
    """An environment.yml with every dependency mapped to PyPI (and Debian, for
    programs), locked and built as a requirements.txt would be."""

    def __init__(self, translation: Any, python: str, relax: bool = False) -> None:
        self.translation = translation
        self.python = python
        self.relax = relax

    def lock(self, ctx: Context) -> Lock:
        from .conda_pypi import lock_header_lines

        translation = self.translation
        ctx.emit(Event(Phase.BUILDING, f"Notice: {translation.notice()}"))
        # The mapping's record comes first, so that the lock (and its cache key) keeps it.
        text = "".join(f"{line}\n" for line in (*lock_header_lines(translation),
                                                *translation.requirements))
        name = ctx.config.conda_environment or "environment.yml"
        inputs = PipInputs(name=name, text=text, files=[],
                           extra={"environment-yml.in": text},
                           python=self.python, python_from=f"{name}'s python",
                           header=tuple(lock_header_lines(translation)),
                           written={pip: conda for conda, pip in translation.mapped})
        if self.relax:
            from .relax import resolve_relaxed

            # The python pin is dropped when it excludes the base's Python.
            allowed = SpecifierSet(translation.python_specifier or "")
            python_dropped = (None if allowed.contains(f"{BASE_PYTHON}.0")
                              else translation.python_spec)
            return resolve_relaxed(inputs, python_dropped, ctx.checkout, ctx.base,
                                   ctx.settings.cache_dir, ctx.emit, ctx.sandbox)
        return resolve_pip_lock(inputs, ctx.checkout, ctx.base, ctx.settings.cache_dir,
                                ctx.emit, ctx.sandbox, strict=ctx.settings.strict_base)

    def environment(self, ctx: Context, engine: Engine, locked: Lock) -> Environment:
        return pip_environment(ctx, engine, locked, self.python,
                               tuple(self.translation.apt_packages))


class CondaEnvironment:
    """`as_pypi`: the PyPI translation of an environment.yml that came here only for its
    Python, which the PyPI path does not build."""

    def __init__(self, as_pypi: Any = None) -> None:
        self.as_pypi = as_pypi

    def lock(self, ctx: Context) -> CondaLock:
        from .conda import resolve_conda_lock

        try:
            return resolve_conda_lock(ctx.checkout, ctx.config.conda_environment,
                                      ctx.config.conda_lock, ctx.settings, ctx.emit,
                                      ctx.sandbox)
        except LockError as exc:
            if self.as_pypi is None:
                raise
            raise _cannot_rebuild(ctx, self.as_pypi, str(exc)) from None

    def environment(self, ctx: Context, engine: Engine, locked: CondaLock) -> Environment:
        from .conda import fetch_packages

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
    from .relax import cannot_rebuild, pins_without_wheels

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


def _pip_python(translation: Any) -> str | None:
    """The Python an environment.yml's `python` spec asks of the PyPI path: the base's
    when it allows it, else the first buildable one it allows; None if none."""
    if translation.python:
        return translation.python if translation.python in PYTHON_VERSIONS else None
    allowed = SpecifierSet(translation.python_specifier or "")
    for version in (BASE_PYTHON, *PYTHON_VERSIONS):
        if allowed.contains(f"{version}.0"):
            return version
    return None


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
