"""A Python project's file: a Pipfile.lock, a Pipfile, a PEP 751 pylock.toml or a uv.lock
(pangeo_binder.builder.python_projects), resolved as its requirements would be; a lock's
packages pinned exactly and hash-checked. The Python is the one it asks for (a
Pipfile.lock's, else its Pipfile's), with runtime.txt's, which must agree.

repo2docker reads a Pipfile(.lock) before requirements.txt, and does not install the
root package beside it; pylock.toml and uv.lock, which it does not read, come before
requirements.txt too, since a lock pins what requirements would resolve.
"""

from __future__ import annotations

from typing import Any

from ...engine import Engine
from ...events import Emit
from ..binder_files import (
    LOCK_FILE_LIMIT,
    BinderConfig,
    check_requirements_text,
    ignored_notice,
    read_text,
)
from ..fetch import Checkout
from ..lock import BASE_PYTHON, Lock, resolve_python_project
from ..plan import Environment
from ..python_projects import PIPFILE, PIPFILE_LOCK, PYLOCK, UV_LOCK, python_requires
from .common import PIP_VENV, Context, Detection, leave_locked, pip_config, pip_environment

NAME = "python_project"
FILES = (PIPFILE_LOCK, PIPFILE, PYLOCK, UV_LOCK)
INSTALLED = PIP_VENV


def detect(found: Detection) -> BinderConfig | None:
    present = [path for name in FILES if (path := found.files.found(name))]
    if not present:
        return None
    source = present[0]
    filename = source.rsplit("/", 1)[-1]
    # repo2docker's Pipfile buildpack does not install the root package; the locks
    # install it when they lock it (its own `.` or `-e .` entry)
    pipenv = filename in (PIPFILE, PIPFILE_LOCK)
    ignored = [*present[1:], *found.ignored(), *(found.files.root_package if pipenv else ())]
    notices = []
    if filename == PIPFILE_LOCK and ignored[:1] == [source.removesuffix(".lock")]:
        # pipenv's own rule (repo2docker runs `pipenv install --ignore-pipfile`)
        notices.append(ignored_notice(source, ignored[:1], "a Pipfile.lock is installed "
                                                           "as locked"))
        ignored = ignored[1:]

    def python_spec() -> tuple[str | None, str, dict[str, Any]]:
        return (*_project_python(found, source, filename), {})

    return pip_config(found, source, ignored, tuple(notices), python_spec,
                      python_project=source)


def _project_python(found: Detection, source: str, filename: str) -> tuple[str | None, str]:
    """The Python a project file asks for (a Pipfile.lock's, else its Pipfile's), read
    here so that a malformed file fails before any build."""
    from .. import python_projects as projects

    checkout = found.files.checkout
    text = read_text(checkout, source, LOCK_FILE_LIMIT)
    directory = source.rpartition("/")[0]
    if filename in (PIPFILE, PIPFILE_LOCK):  # the packages, checked as requirements are
        requirements = (projects.pipfile_requirements(text, source, directory)
                        if filename == PIPFILE else
                        projects.pipfile_lock_requirements(text, source, directory))
        check_requirements_text(projects.split_hashes(requirements)[0], source,
                                set(checkout.files))
    else:
        projects.parse_toml(text, source)
    spec = python_requires(text, filename)
    if spec is None and filename == PIPFILE_LOCK and (pipfile := found.files.found(PIPFILE)):
        pipfile_text = read_text(checkout, pipfile)
        projects.parse_toml(pipfile_text, pipfile)
        return python_requires(pipfile_text, PIPFILE), pipfile
    return spec, source


def select(config: BinderConfig, checkout: Checkout, emit: Emit,
           relax: bool = False) -> PythonProject:
    return PythonProject(relax)


class PythonProject:
    def __init__(self, relax: bool = False) -> None:
        self.relax = relax

    def lock(self, ctx: Context) -> Lock:
        name = ctx.config.python_project
        assert name is not None
        if self.relax:
            leave_locked(ctx, name)
        return resolve_python_project(ctx.checkout, ctx.config, ctx.base,
                                      ctx.settings.cache_dir, ctx.emit, ctx.sandbox,
                                      strict=ctx.settings.strict_base)

    def environment(self, ctx: Context, engine: Engine, locked: Lock) -> Environment:
        # --relax leaves a project file as it is, its Python too.
        return pip_environment(ctx, engine, locked, ctx.config.python_version or BASE_PYTHON)
