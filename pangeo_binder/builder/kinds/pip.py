"""requirements.txt, a root package (repo2docker installs a root setup.py, or a
pyproject.toml that declares a package, when there is no binder directory), runtime.txt,
or nothing at all: repo2docker's last buildpack, which any repository matches. Extras on
the Pangeo base; or a standalone environment, when the pins or the Python move the
repository off the base (pangeo_binder.builder.lock says when).
"""

from __future__ import annotations

from typing import Any

from ...engine import Engine
from ...events import Emit
from ..binder_files import BinderConfig, check_requirements_text, declares_package, read_text
from ..fetch import Checkout
from ..lock import BASE_PYTHON, Lock, PipInputs, resolve_pip_lock
from ..plan import Environment
from .common import PIP_VENV, Context, Detection, pip_config, pip_environment

NAME = "pip"
FILES = ("requirements.txt",)
INSTALLED = PIP_VENV


def detect(found: Detection) -> BinderConfig:
    files = found.files
    requirements = files.found("requirements.txt")

    def python_spec() -> tuple[str | None, str, dict[str, Any]]:
        checkout, names = files.checkout, files.files
        lists_repository = False
        if requirements:
            lists_repository = check_requirements_text(read_text(checkout, requirements),
                                                       requirements, names)
        install_repository = (not files.binder_dir and not lists_repository
                              and declares_package(checkout, names))
        spec, spec_from = None, ""
        if install_repository and "pyproject.toml" in names:
            from ..python_projects import parse_toml

            project = parse_toml(read_text(checkout, "pyproject.toml"), "pyproject.toml")
            spec = (project.get("project") or {}).get("requires-python")
            spec_from = "pyproject.toml"
        return spec, spec_from, {"install_repository": install_repository}

    return pip_config(found, requirements, found.ignored(), python_spec=python_spec,
                      requirements=requirements)


def select(config: BinderConfig, checkout: Checkout, emit: Emit,
           relax: bool = False) -> PipEnvironment:
    return PipEnvironment(relax)


class PipEnvironment:
    def __init__(self, relax: bool = False) -> None:
        self.relax = relax

    def lock(self, ctx: Context) -> Lock | None:
        """The repository's requirements.txt, root package and runtime.txt, pinned and
        hashed; None when it has none: extras on the base, or (unless --strict-base) a
        standalone environment when its pins need other versions of base packages
        (pangeo_binder.builder.lock says when). With --relax, they are relaxed onto the
        base (pangeo_binder.builder.relax).

        A resolved lock is cached by its inputs, so an unchanged repository is not
        resolved again (and keeps its versions, as a committed lockfile would). Resolving
        runs in the sandbox, with a copy of the repository's files (what its includes,
        --find-links and path requirements may name)."""
        config, checkout = ctx.config, ctx.checkout
        python = config.python_version or BASE_PYTHON
        if not config.requirements and not config.install_repository \
                and python == BASE_PYTHON:
            return None
        name = config.requirements or ("the repository's package"
                                       if config.install_repository
                                       else config.path("runtime.txt"))
        text = read_text(checkout, config.requirements) if config.requirements else ""
        # repo2docker installs a root setup.py after the requirements: resolved with
        # them, so that its dependencies are locked too.
        inputs = PipInputs(name=name, text=text,
                           files=[config.requirements] if config.requirements else [],
                           extra={"repository.in": ".\n"} if config.install_repository else {},
                           python=python,
                           python_from=config.python_from or config.path("runtime.txt"))
        if self.relax:
            from ..relax import resolve_relaxed

            python_dropped = None if python == BASE_PYTHON else f"python-{python}"
            return resolve_relaxed(inputs, python_dropped, checkout, ctx.base,
                                   ctx.settings.cache_dir, ctx.emit, ctx.sandbox)
        return resolve_pip_lock(inputs, checkout, ctx.base, ctx.settings.cache_dir, ctx.emit,
                                ctx.sandbox, strict=ctx.settings.strict_base)

    def environment(self, ctx: Context, engine: Engine, locked: Lock | None) -> Environment:
        # --relax drops the Python of what it relaxes.
        python = BASE_PYTHON if self.relax else ctx.config.python_version or BASE_PYTHON
        return pip_environment(ctx, engine, locked, python)
