"""Settings shared by the stages, read once from the environment and CLI options."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_OS_IMAGE = "debian:bookworm-slim"  # Python 3.11: the Pangeo base's
# The CPythons each Debian suite packages (python3.X), as Debian's archive has them, in
# the order a Python is looked for in them after the OS image's own suite: releases
# before unstable. A Python from Debian needs no download outside Debian's archive
# (pangeo_binder.builder.pythons says where each Python comes from).
DEBIAN_PYTHONS = {"bookworm": ("3.11",), "trixie": ("3.13",),
                  "sid": ("3.13", "3.14", "3.15")}
# The OS image of each of those Pythons: the first suite's that packages it.
DEFAULT_PYTHON_OS_IMAGES = {"3.11": "debian:bookworm-slim", "3.13": "debian:trixie-slim",
                            "3.14": "debian:sid-slim", "3.15": "debian:sid-slim"}
DEFAULT_IMAGE_PREFIX = "pangeo-binder/"
# Variables that name a CA bundle on machines behind an intercepting proxy; the first
# that names a file is handed to builds (as a BuildKit secret, never as a layer).
CA_BUNDLE_VARIABLES = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE")
# The notebook user every image runs as: what repo2docker takes as --user-name/--user-id
# and hands a repository's own Dockerfile as the NB_USER and NB_UID build arguments.
NOTEBOOK_USER = ("jovyan", 1000)


def _default_docker_cli() -> str:
    # Debian's docker.io CLI builds with the daemon's built-in BuildKit; a newer CLI
    # without the buildx plugin refuses to, so prefer the packaged one where it exists.
    if Path("/usr/bin/docker").exists():
        return "/usr/bin/docker"
    import shutil

    return shutil.which("docker") or "docker"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pangeo-binder"


def _default_ca_bundle() -> Path | None:
    for name in CA_BUNDLE_VARIABLES:
        value = os.environ.get(name)
        if value and Path(value).is_file():
            return Path(value)
    return None


def _python_os_images(value: str) -> dict[str, str]:
    """`3.14=pangeo-binder/debian:sid-minbase[,X.Y=IMAGE...]` over the defaults."""
    images = dict(DEFAULT_PYTHON_OS_IMAGES)
    for item in filter(None, (part.strip() for part in value.split(","))):
        version, _, image = item.partition("=")
        if version.strip() and image.strip():
            images[version.strip()] = image.strip()
    return images


@dataclass(frozen=True)
class Settings:
    docker_cli: str
    os_image: str
    image_prefix: str
    cache_dir: Path
    ca_bundle: Path | None
    # Conda builds: the channels builds may use (NAME=URL, comma-separated, in priority
    # order) and the base environment.yml a repository's is solved with.
    conda_channels: str = ""
    conda_base: Path | None = None
    # One stack for everyone: refuse a repository whose pins move base packages instead
    # of giving it a standalone environment.
    strict_base: bool = False
    # An old repository on today's stack: drop the version pins (and the python pin)
    # that cannot be met on the Pangeo base, keeping the package names
    # (pangeo_binder.builder.relax). The opposite of strict_base; both is an error.
    relax: bool = False
    # Python "X.Y" -> an OS image whose apt installs it as python3.X (Debian's suite
    # that packages it), for a Python the suite of `os_image` does not package.
    python_os_images: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_PYTHON_OS_IMAGES))
    notebook_user: tuple[str, int] = NOTEBOOK_USER
    # A repository's own Dockerfile whose image runs as root is refused (on a hub that is
    # a root session) unless the operator allows it.
    allow_root: bool = False

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            docker_cli=os.environ.get("PANGEO_BINDER_DOCKER") or _default_docker_cli(),
            os_image=os.environ.get("PANGEO_BINDER_OS_IMAGE") or DEFAULT_OS_IMAGE,
            image_prefix=os.environ.get("PANGEO_BINDER_IMAGE_PREFIX") or DEFAULT_IMAGE_PREFIX,
            cache_dir=Path(os.environ.get("PANGEO_BINDER_CACHE_DIR") or _default_cache_dir()),
            ca_bundle=_default_ca_bundle(),
            conda_channels=os.environ.get("PANGEO_BINDER_CONDA_CHANNELS") or "",
            conda_base=Path(os.environ["PANGEO_BINDER_CONDA_BASE"])
            if os.environ.get("PANGEO_BINDER_CONDA_BASE") else None,
            strict_base=os.environ.get("PANGEO_BINDER_STRICT_BASE", "").lower()
            in ("1", "true", "yes"),
            relax=os.environ.get("PANGEO_BINDER_RELAX", "").lower() in ("1", "true", "yes"),
            python_os_images=_python_os_images(
                os.environ.get("PANGEO_BINDER_PYTHON_OS_IMAGES", "")),
            allow_root=os.environ.get("PANGEO_BINDER_ALLOW_ROOT", "").lower()
            in ("1", "true", "yes"),
        )

    def check(self) -> None:
        """Refuse settings that contradict each other."""
        if self.strict_base and self.relax:
            from .errors import BinderConfigError

            raise BinderConfigError(
                "--relax and --strict-base ask for opposite things (drop the pins that "
                "move the Pangeo base, or refuse them): choose one (settings "
                "PANGEO_BINDER_RELAX, PANGEO_BINDER_STRICT_BASE)")

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the options the user gave (None means "not given")."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
