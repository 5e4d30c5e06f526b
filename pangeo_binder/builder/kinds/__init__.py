"""Environment kinds: which binder files decide a repository's environment, how it is
locked, and what its image is built on.

One module a kind. Each recognises its files (`detect`, which fills the `BinderConfig`
and says which files it ignores), makes its `Kind` (`select`), locks the repository's
inputs (`Kind.lock`), before the Docker engine is asked for anything, so that a bad pin
is reported before "Docker is not running", then names the images the repository's
image is built on (`Kind.environment`); `INSTALLED` is what `pangeo-binder verify` finds
in its images.

KINDS is repo2docker's order of buildpacks (its app.py: Dockerfile, R and Julia, conda,
Pipfile, then requirements.txt with the root package): the first kind whose files are
present builds the image, and the files of the kinds after it are ignored (said).
pangeo-binder's own lock comes first among the pip files (it is the export of whichever
of them the repository has), and a PEP 751 pylock.toml and a uv.lock, which repo2docker
does not read, come before requirements.txt, since a lock pins what requirements would
resolve:

- dockerfile: the repository's own Dockerfile, built as is.
- unsupported: R and Julia environments, refused.
- conda_via_pypi: an environment.yml PyPI can install, locked with uv.
- conda: any other environment.yml, or a conda-lock.yml, solved with py-rattler.
- shipped_lock: a pangeo-binder.lock, used as is.
- python_project: a Pipfile.lock, Pipfile, pylock.toml or uv.lock.
- pip: requirements.txt, a root package, runtime.txt, or nothing at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from types import ModuleType

from ...events import Emit
from ..binder_files import BinderConfig, binder_files
from ..fetch import Checkout
from . import (
    conda,
    conda_via_pypi,
    dockerfile,
    pip,
    python_project,
    shipped_lock,
    unsupported,
)
from .common import (
    Context,
    Detection,
    Installed,
    Kind,
    base_image_plans,
    os_image_id,
    python_image_for,
)

__all__ = ["KINDS", "Context", "Installed", "Kind", "base_image_plans", "choose", "detect",
           "installed", "os_image_id", "python_image_for"]

# The order is the precedence: the first kind whose `detect` matches is the repository's.
# pip matches any repository, so it is last.
KINDS: tuple[ModuleType, ...] = (dockerfile, unsupported, conda_via_pypi, conda,
                                 shipped_lock, python_project, pip)


def detect(checkout: Checkout, base_python: str, relax: bool = False) -> BinderConfig:
    """The repository's binder files, read by the first kind of KINDS that has its files.
    With `relax`, a runtime.txt asking for a Python no source has is read as written:
    --relax drops it (pangeo_binder.builder.relax)."""
    files = binder_files(checkout)
    for index, kind in enumerate(KINDS):
        later = (name for after in KINDS[index + 1:] for name in after.FILES
                 if name not in kind.FILES)
        config = kind.detect(Detection(files, base_python, relax,
                                       tuple(dict.fromkeys(later))))
        if config is not None:
            return replace(config, kind=kind.NAME)
    raise AssertionError("the last kind matches any repository")


def choose(config: BinderConfig, checkout: Checkout, emit: Emit,
           relax: bool = False) -> Kind:
    """The kind `detect` found the repository's files to be, as its module makes it
    (an environment.yml PyPI cannot install goes to conda, said); with `relax`, an
    environment.yml PyPI can install is relaxed onto the base's Python
    (pangeo_binder.builder.relax)."""
    kind = next((kind for kind in KINDS if config.kind == kind.NAME), None)
    if kind is None:
        raise ValueError(f"no environment kind {config.kind!r}: the config is not detect()'s")
    return kind.select(config, checkout, emit, relax)


def installed(lock_files: Iterable[str]) -> Installed | None:
    """The environment an image pangeo-binder built carries, from the names of the lock
    files in its /srv/pangeo-binder; None when no kind's lock is there."""
    names = list(lock_files)
    for kind in KINDS:
        if kind.INSTALLED is not None and kind.INSTALLED.marks(names):
            return kind.INSTALLED
    return None
