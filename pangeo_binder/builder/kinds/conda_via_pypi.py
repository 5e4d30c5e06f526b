"""An environment.yml whose every dependency has a faithful PyPI equivalent
(pangeo_binder.builder.conda_pypi), locked with uv and built as a requirements.txt would
be: seconds instead of a conda solve, and the base's layers when it fits the base.

Before `conda` in KINDS: an environment.yml alone is tried here first, and handed over to
conda (said) when it asks for conda in a comment (CONDA_MARKER), when a dependency has no
faithful PyPI equivalent, or when it asks for a Python the PyPI path does not build. With
a conda-lock.yml it is conda's.
"""

from __future__ import annotations

from typing import Any

from packaging.specifiers import SpecifierSet

from ...engine import Engine
from ...errors import BinderConfigError
from ...events import Emit, Event, Phase
from ...yaml_file import load_yaml
from ..binder_files import PYTHON_VERSIONS, BinderConfig, read_text
from ..fetch import Checkout
from ..lock import BASE_PYTHON, Lock, PipInputs, resolve_pip_lock
from ..plan import Environment
from . import conda
from .common import PIP_VENV, Context, Detection, Kind, pip_environment

NAME = "conda_via_pypi"
FILES = conda.ENVIRONMENT_FILES
INSTALLED = PIP_VENV
# A repository that wants its environment.yml solved by conda, even where PyPI has every
# package, says so in a comment of the file (conda itself ignores comments).
CONDA_MARKER = "# pangeo-binder: conda"


def detect(found: Detection) -> BinderConfig | None:
    environments = [path for name in FILES if (path := found.files.found(name))]
    if not environments or found.files.found(conda.CONDA_LOCK):
        return None
    return conda.environment_config(found, environments, None)


def select(config: BinderConfig, checkout: Checkout, emit: Emit, relax: bool = False) -> Kind:
    """This kind, or conda's (said) for an environment.yml PyPI cannot install as
    written; with `relax`, an environment.yml PyPI can install is relaxed onto the
    base's Python (pangeo_binder.builder.relax)."""
    from ..conda_pypi import PypiTranslation, translate

    name = config.conda_environment
    assert name is not None
    text = read_text(checkout, name)
    if CONDA_MARKER in text:
        emit(Event(Phase.BUILDING, f"{name} asks for conda ({CONDA_MARKER!r})"))
        return conda.unrelaxed(relax, name, emit)
    # The file as written (its prefix and name tell a `conda env export`), not as the
    # conda path parses it: py-rattler's strict parser refuses an export's
    # name=version=build lines, which conda itself reads as name ==version build.
    translation = translate(load_yaml(text, name, BinderConfigError), name)
    if not isinstance(translation, PypiTranslation):
        emit(Event(Phase.BUILDING, f"Notice: {translation.notice()}; solving it with "
                                   "conda"))
        return conda.unrelaxed(relax, name, emit)
    if relax:
        return CondaViaPyPI(translation, BASE_PYTHON, relax=True)
    python = _pip_python(translation)
    if python is None:
        emit(Event(Phase.BUILDING, f"Notice: {name} asks for {translation.python_spec}, "
                                   "which the PyPI path does not build (Python "
                                   f"{PYTHON_VERSIONS[0]} to {PYTHON_VERSIONS[-1]}); "
                                   "solving it with conda"))
        return conda.CondaEnvironment(as_pypi=translation)
    return CondaViaPyPI(translation, python)


class CondaViaPyPI:
    """An environment.yml with every dependency mapped to PyPI (and Debian, for
    programs), locked and built as a requirements.txt would be."""

    def __init__(self, translation: Any, python: str, relax: bool = False) -> None:
        self.translation = translation
        self.python = python
        self.relax = relax

    def lock(self, ctx: Context) -> Lock:
        from ..conda_pypi import lock_header_lines

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
                           written={pip: spec for spec, pip in translation.mapped})
        if self.relax:
            from ..relax import resolve_relaxed

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
