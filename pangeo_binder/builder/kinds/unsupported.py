"""R and Julia environments, in repo2docker's place for them (after a Dockerfile, before
conda): recognised, and refused rather than ignored, as pangeo-binder does not build
them (yet)."""

from __future__ import annotations

from ...errors import BinderConfigError
from ...events import Emit
from ..binder_files import BinderConfig
from ..fetch import Checkout
from .common import Detection, Installed, Kind

NAME = "unsupported"
# Refused, not used: a kind before them does not name them as ignored.
FILES: tuple[str, ...] = ()
INSTALLED: Installed | None = None
REFUSED = {
    "install.R": "R environments (install.R) are not supported by pangeo-binder",
    "Project.toml": "Julia environments (Project.toml) are not supported by pangeo-binder",
    "REQUIRE": "Julia environments (REQUIRE) are not supported by pangeo-binder",
}


def detect(found: Detection) -> BinderConfig | None:
    for filename, reason in REFUSED.items():
        if path := found.files.found(filename):
            raise BinderConfigError(f"{path}: {reason}")
    return None


def select(config: BinderConfig, checkout: Checkout, emit: Emit, relax: bool = False) -> Kind:
    raise AssertionError("R and Julia environments are refused when detected")
