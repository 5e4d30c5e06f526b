"""Read a checkout's binder files into a validated `BinderConfig`.

repo2docker's contract: the files live in `binder/`, else `.binder/`, else the root.
Everything that decides the image is validated here, so a bad file fails before any
build starts, with the file and line named.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import BinderConfigError
from ..settings import DEBIAN_PYTHONS
from .fetch import Checkout

BINDER_DIRS = ("binder", ".binder")
LOCK_FILENAME = "pangeo-binder.lock"
CONDA_ENVIRONMENT_FILENAMES = ("environment.yml", "environment.yaml")
CONDA_LOCK_FILENAME = "conda-lock.yml"
# Debian policy 5.6.1: lower-case letters, digits, '+', '-' and '.'; at least two
# characters, starting with a letter or digit.
_DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_RUNTIME = re.compile(r"^python-(\d+\.\d+)(?:\.\d+)?$")
# Environments pangeo-binder does not build (yet): refuse rather than ignore.
_UNSUPPORTED = {
    "Pipfile": "Pipfile is not supported; export it with `pipenv requirements > requirements.txt`",
    "Pipfile.lock": "Pipfile.lock is not supported; export it with "
                    "`pipenv requirements > requirements.txt`",
    "install.R": "R environments (install.R) are not supported by pangeo-binder",
    "Project.toml": "Julia environments (Project.toml) are not supported by pangeo-binder",
    "REQUIRE": "Julia environments (REQUIRE) are not supported by pangeo-binder",
}
# Requirement lines that install from a local path. The repository's own directories
# (`.`, `-e .`, `./pkg`, relative to its root, as pip and repo2docker read them) are
# installed after the repository is copied in; any other path (`..`, `/opt/x`,
# `file:`, "pkg @ file:///...") would reach outside the repository and is refused.
_LOCAL_REQUIREMENT = re.compile(r"^(-e|--editable)?\s*(\.{1,2}(/|$)|/|file:)|@\s*file:")
_REPOSITORY_REQUIREMENT = re.compile(
    r"^(?:(?:-e|--editable)\s+)?(\.(?:/[^\s;\[]*)?)(?:\[[^\]]*\])?$")
# Binder files are small text; a shipped lock may be large. Anything bigger is refused
# before it is read.
BINDER_FILE_LIMIT = 1 << 20
LOCK_FILE_LIMIT = 64 << 20
# Repository files larger than this are not copied into the resolver's sandbox.
SANDBOX_FILE_LIMIT = 32 << 20


@dataclass(frozen=True)
class BinderConfig:
    binder_dir: str  # "binder", ".binder" or "" for the root
    requirements: str | None = None  # repo-relative path
    apt_packages: tuple[str, ...] = ()
    post_build: str | None = None
    start: str | None = None
    python_version: str | None = None  # from runtime.txt, e.g. "3.11"
    # repo2docker's rule: a root setup.py (or a pyproject.toml that declares a package)
    # is installed after the requirements when there is no binder directory.
    install_repository: bool = False
    lock_file: str | None = None  # a shipped pangeo-binder lock, used as is
    dockerfile: str | None = None  # a repo Dockerfile bypasses all of the above
    # A conda environment (environment.yml and/or a shipped conda-lock.yml) replaces the
    # pip environment: requirements, runtime.txt and a pangeo-binder lock do not apply.
    conda_environment: str | None = None
    conda_lock: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def conda(self) -> bool:
        return bool(self.conda_environment or self.conda_lock)

    def path(self, name: str) -> str:
        return f"{self.binder_dir}/{name}" if self.binder_dir else name


def _regular_file(checkout: Checkout, name: str) -> Path:
    """The real path of `name` if it is a regular file inside the checkout. A binder
    file that is a link out of the repository (to /etc/passwd, /proc/self/environ, ...)
    or a device is refused by name: its contents must never reach a message or a log."""
    root = checkout.path.resolve()
    path = (checkout.path / name).resolve()
    if not path.is_relative_to(root):
        raise BinderConfigError(f"{name} is a link to outside the repository; binder files "
                                "must be regular files in the repository")
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise BinderConfigError(f"cannot read {name}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise BinderConfigError(f"{name} is not a regular file")
    return path


def read_text(checkout: Checkout, name: str, limit: int = BINDER_FILE_LIMIT) -> str:
    """A binder file's text, read only if it is a regular file inside the checkout and
    no larger than `limit`."""
    path = _regular_file(checkout, name)
    if path.stat().st_size > limit:
        raise BinderConfigError(f"{name} is larger than {limit >> 20} MiB")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BinderConfigError(f"{name} is not UTF-8 text") from None
    except OSError as exc:
        raise BinderConfigError(f"cannot read {name}: {exc.strerror}") from None


def repository_files(checkout: Checkout) -> dict[str, bytes]:
    """The repository's regular files (links that stay inside it, as their targets' bytes)
    up to SANDBOX_FILE_LIMIT each: what a sandbox gets to resolve requirements with."""
    root = checkout.path.resolve()
    files = {}
    for name in checkout.files:
        path = (checkout.path / name).resolve()
        if not path.is_relative_to(root):
            continue
        try:
            info = path.stat()
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_size <= SANDBOX_FILE_LIMIT:
            files[name] = path.read_bytes()
    return files


def parse_apt_txt(text: str, name: str = "apt.txt") -> tuple[str, ...]:
    """Debian package names, one per line; comments and blank lines allowed."""
    packages = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not _DEBIAN_PACKAGE.match(line):
            raise BinderConfigError(
                f"{name} line {number}: {line!r} is not a Debian package name "
                "(one name per line: lower-case letters, digits, '+', '-', '.')"
            )
        packages.append(line)
    return tuple(dict.fromkeys(packages))


# The Pythons a repository may ask for: Debian's (settings.DEBIAN_PYTHONS) and, for the
# others, uv's managed Python (pangeo_binder.build.pythons).
PYTHON_VERSIONS = ("3.10", "3.11", "3.12", "3.13", "3.14", "3.15")


def python_sources() -> str:
    """The Pythons a repository may ask for, each with where it comes from."""
    parts, seen = [], set()
    for suite, versions in DEBIAN_PYTHONS.items():
        new = [version for version in versions
               if version in PYTHON_VERSIONS and version not in seen]
        seen.update(new)
        if new:
            parts.append(f"{' and '.join(new)} (Debian {suite})")
    managed = [version for version in PYTHON_VERSIONS if version not in seen]
    if managed:
        parts.append(f"{' and '.join(managed)} (uv's managed Python, downloaded in the build)")
    return ", ".join(parts)


def parse_runtime_txt(text: str, base_python: str, name: str = "runtime.txt") -> str:
    """The "X.Y" of `python-X.Y[.Z]`."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    runtime = lines[0] if lines else ""
    match = _RUNTIME.match(runtime)
    if runtime == "python-2.7" or (match and match[1].startswith("2.")):
        raise BinderConfigError(f"{name} asks for {runtime}, which pangeo-binder does not "
                                "support (its images run Python 3)")
    if not match:
        raise BinderConfigError(
            f"{name}: unsupported runtime {runtime!r}; expected python-X.Y "
            f"(the Pangeo base runs python-{base_python})"
        )
    if match[1] not in PYTHON_VERSIONS:
        raise BinderConfigError(
            f"{name} asks for python-{match[1]}, which no source has; the Pythons to be had "
            f"are {python_sources()}; the Pangeo base runs python-{base_python}")
    return match[1]


def _check_requirements(text: str, name: str, files: set[str]) -> bool:
    """Refuse local paths outside the repository; return whether the requirements
    install one of its own directories."""
    local = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        match = _REPOSITORY_REQUIREMENT.match(line)
        if match and ".." not in match[1].split("/"):
            directory = match[1].removeprefix(".").strip("/")
            prefix = f"{directory}/" if directory else ""
            if not any(f"{prefix}{marker}" in files for marker in _PACKAGE_MARKERS):
                raise BinderConfigError(
                    f"{name} line {number}: {line!r} names no Python package (no "
                    f"setup.py or pyproject.toml in {directory or 'the repository root'})")
            local = True
        elif _LOCAL_REQUIREMENT.search(line):
            raise BinderConfigError(
                f"{name} line {number}: {line!r} installs from outside the repository; "
                "only its own directories (., ./pkg) can be installed"
            )
    return local


_PACKAGE_MARKERS = ("setup.py", "pyproject.toml")


def _declares_package(checkout: Checkout, files: set[str]) -> bool:
    """Whether the repository root is a Python package pip can install: a setup.py, or a
    pyproject.toml with a [project] or [build-system] table (many hold only tool
    settings, which `pip install .` would turn into an empty package)."""
    if "setup.py" in files:
        return True
    if "pyproject.toml" not in files:
        return False
    text = read_text(checkout, "pyproject.toml")
    return bool(re.search(r"^\s*\[(project|build-system)\]", text, re.M))


def _apt_packages(checkout: Checkout, apt_txt: str | None) -> tuple[str, ...]:
    return parse_apt_txt(read_text(checkout, apt_txt), apt_txt) if apt_txt else ()


def detect(checkout: Checkout, base_python: str) -> BinderConfig:
    files = set(checkout.files)
    present = [d for d in BINDER_DIRS if any(f.startswith(d + "/") for f in files)]
    if len(present) > 1:
        raise BinderConfigError(
            "both binder/ and .binder/ exist; keep one of them (repo2docker's rule)"
        )
    binder_dir = present[0] if present else ""

    def found(name: str) -> str | None:
        path = f"{binder_dir}/{name}" if binder_dir else name
        if path not in files:
            return None
        _regular_file(checkout, path)
        return path

    if dockerfile := found("Dockerfile"):
        return BinderConfig(
            binder_dir=binder_dir, dockerfile=dockerfile,
            warnings=(f"{dockerfile} is built as is: it bypasses the pinned Pangeo "
                      "environment and its reproducibility guarantees",),
        )

    for filename, reason in _UNSUPPORTED.items():
        if path := found(filename):
            raise BinderConfigError(f"{path}: {reason}")

    warnings = []
    if binder_dir and _declares_package(checkout, files):
        warnings.append(f"the repository's own package is not installed, as {binder_dir}/ "
                        "exists (repo2docker's rule); add `.` to "
                        f"{binder_dir}/requirements.txt if the notebooks import it")

    environments = [path for name in CONDA_ENVIRONMENT_FILENAMES if (path := found(name))]
    if len(environments) > 1:
        raise BinderConfigError(f"both {environments[0]} and {environments[1]} exist; "
                                "keep one of them")
    conda_lock = found(CONDA_LOCK_FILENAME)
    if environments or conda_lock:
        for name in ("requirements.txt", "runtime.txt", LOCK_FILENAME):
            if path := found(name):
                warnings.append(f"{path} is ignored: the conda environment decides the "
                                "packages and the Python (list pip packages under pip: "
                                "in the environment file)")
        return BinderConfig(
            binder_dir=binder_dir, apt_packages=_apt_packages(checkout, found("apt.txt")),
            post_build=found("postBuild"), start=found("start"),
            conda_environment=environments[0] if environments else None,
            conda_lock=conda_lock, warnings=tuple(warnings))

    requirements = found("requirements.txt")
    lists_repository = False
    if requirements:
        lists_repository = _check_requirements(read_text(checkout, requirements),
                                               requirements, files)
    runtime = found("runtime.txt")
    if requirements3 := found("requirements3.txt"):
        warnings.append(f"{requirements3} is ignored: repo2docker reads it only beside "
                        "runtime.txt python-2.7; list the packages in requirements.txt")
    return BinderConfig(
        binder_dir=binder_dir,
        requirements=requirements,
        install_repository=(not binder_dir and not lists_repository
                             and _declares_package(checkout, files)),
        apt_packages=_apt_packages(checkout, found("apt.txt")),
        post_build=found("postBuild"),
        start=found("start"),
        python_version=(parse_runtime_txt(read_text(checkout, runtime), base_python, runtime)
                        if runtime else None),
        lock_file=found(LOCK_FILENAME),
        warnings=tuple(warnings),
    )
