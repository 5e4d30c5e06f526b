"""Where the Python of an OS + Python image comes from.

A Python some Debian suite packages (`python3.X`) is installed with apt from that
suite's archive: nothing is downloaded from anywhere else, which is all a build cluster
behind a firewall may reach, and the interpreter is the one Debian builds and patches.
A requested Python comes, in this order, from

1. the OS image's own suite (bookworm's 3.11, under the Pangeo base);
2. the OS image of another suite that packages it (settings.python_os_images: trixie for
   3.13, sid for 3.14 and 3.15);
3. uv's managed Python, downloaded during the build and checked against the sha256 uv
   ships for it.

The order depends on the settings only, never on what this machine happens to have: a
missing OS image is an error, not a reason to take another source. The source is in the
image's content hash and its `pangeo-binder.python` label, so the same request gives the
same image on another machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import DEBIAN_PYTHONS, Settings
from .lock import BASE_PYTHON

PYTHON_LABEL = "pangeo-binder.python"
# Debian's images are also tagged by release number, and sid as unstable.
_SUITE_ALIASES = {"12": "bookworm", "13": "trixie", "unstable": "sid"}


@dataclass(frozen=True)
class PythonSource:
    version: str  # "X.Y"
    os_image: str
    suite: str | None = None  # the Debian suite of os_image, when its name tells it
    managed: bool = False  # uv's managed Python, on os_image
    setting: str = "PANGEO_BINDER_OS_IMAGE"  # names os_image (in the error when it is missing)

    @property
    def hash_part(self) -> str:
        """What the content hash takes of the source (the OS image is hashed by its id,
        so renaming it changes nothing)."""
        if self.managed:
            return f"managed python {self.version}"
        return f"debian package python{self.version}"

    def describe(self) -> str:
        """The image's pangeo-binder.python label."""
        if self.managed:
            return f"{self.version} from uv's managed Python"
        where = f"Debian {self.suite}" if self.suite else "the OS image's apt"
        return f"python{self.version} from {where}"


def os_suite(image: str) -> str | None:
    """The Debian suite of an OS image named as Debian's are (`debian:trixie-slim`,
    `debian:12`, `pangeo-binder/debian:sid-minbase`); None for any other name."""
    name, colon, tag = image.rpartition(":")
    if not colon or "/" in tag:  # no tag at all (`debian`, `host:5000/debian`)
        name, tag = image, "latest"
    if name.rsplit("/", 1)[-1] != "debian":
        return None
    suite = tag.split("-", 1)[0]
    suite = _SUITE_ALIASES.get(suite, suite)
    return suite if suite in DEBIAN_PYTHONS else None


def python_source(settings: Settings, version: str) -> PythonSource:
    """Where Python `version` comes from under `settings` (the module's docstring)."""
    suite = os_suite(settings.os_image)
    # An OS image named otherwise is the Pangeo base's: its python3 is the base's.
    own = DEBIAN_PYTHONS[suite] if suite else (BASE_PYTHON,)
    if version in own:
        return PythonSource(version, settings.os_image, suite)
    if image := settings.python_os_images.get(version):
        return PythonSource(version, image, os_suite(image),
                            setting=f"PANGEO_BINDER_PYTHON_OS_IMAGES={version}=IMAGE")
    return PythonSource(version, settings.os_image, suite, managed=True)
