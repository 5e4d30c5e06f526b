"""A shipped pangeo-binder.lock (what `pangeo-binder lock` exported), used as is: extras
on the Pangeo base, or a standalone environment when its pins move the base. It comes
before every other pip file: it is the export of whichever of them the repository has.
"""

from __future__ import annotations

from ...engine import Engine
from ...events import Emit
from ..binder_files import BinderConfig
from ..fetch import Checkout
from ..lock import BASE_PYTHON, Lock, use_repository_lock
from ..plan import Environment
from .common import PIP_VENV, Context, Detection, leave_locked, pip_config, pip_environment

NAME = "shipped_lock"
LOCK_FILE = "pangeo-binder.lock"
FILES = (LOCK_FILE,)
INSTALLED = PIP_VENV


def detect(found: Detection) -> BinderConfig | None:
    source = found.files.found(LOCK_FILE)
    if source is None:
        return None
    return pip_config(found, source, found.ignored(), lock_file=source)


def select(config: BinderConfig, checkout: Checkout, emit: Emit,
           relax: bool = False) -> ShippedLock:
    return ShippedLock(relax)


class ShippedLock:
    def __init__(self, relax: bool = False) -> None:
        self.relax = relax

    def lock(self, ctx: Context) -> Lock:
        name = ctx.config.lock_file
        assert name is not None
        if self.relax:
            leave_locked(ctx, name)
        return use_repository_lock(ctx.checkout, name, ctx.base, ctx.emit,
                                   strict=ctx.settings.strict_base)

    def environment(self, ctx: Context, engine: Engine, locked: Lock) -> Environment:
        # --relax leaves a lock as it is, its Python too.
        return pip_environment(ctx, engine, locked, ctx.config.python_version or BASE_PYTHON)
