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

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from ..errors import BinderConfigError
from ..settings import DEBIAN_PYTHONS
from .fetch import Checkout
from .python_projects import PIPFILE, PIPFILE_LOCK, PYLOCK, UV_LOCK, python_requires

BINDER_DIRS = ("binder", ".binder")
LOCK_FILENAME = "pangeo-binder.lock"
CONDA_ENVIRONMENT_FILENAMES = ("environment.yml", "environment.yaml")
CONDA_LOCK_FILENAME = "conda-lock.yml"
# Debian policy 5.6.1: lower-case letters, digits, '+', '-' and '.'; at least two
# characters, starting with a letter or digit.
_DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_RUNTIME = re.compile(r"^python-(\d+(?:\.\d+)?)(?:\.\d+)?$")
# Environments pangeo-binder does not build (yet): refuse rather than ignore.
_UNSUPPORTED = {
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
    # A Pipfile, Pipfile.lock, pylock.toml or uv.lock: the packages, as that file says
    # (pangeo_binder.builder.python_projects); requirements.txt then does not apply.
    python_project: str | None = None
    python_from: str | None = None  # the file that chose `python_version`
    # .dockerignore and .containerignore patterns: files kept out of the image's copy
    ignore_patterns: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()  # which binder file was used where several could be

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
# others, uv's managed Python (pangeo_binder.builder.pythons).
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


def parse_runtime_txt(text: str, base_python: str, name: str = "runtime.txt",
                      any_python: bool = False) -> str:
    """The "X.Y" of `python-X.Y[.Z]`; `python-3`, any Python 3, is the base's, as
    repo2docker reads it as its default Python. With `any_python` (--relax, which drops
    the pin), a Python 3 no source has is taken too."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    runtime = lines[0] if lines else ""
    match = _RUNTIME.match(runtime)
    if match and match[1].split(".")[0] == "2":
        raise BinderConfigError(f"{name} asks for {runtime}, which pangeo-binder does not "
                                "support (its images run Python 3)")
    if not match:
        raise BinderConfigError(
            f"{name}: unsupported runtime {runtime!r}; expected python-3 or python-X.Y "
            f"(the Pangeo base runs python-{base_python})"
        )
    if match[1] == "3":
        return base_python
    if match[1] not in PYTHON_VERSIONS and not any_python:
        raise BinderConfigError(
            f"{name} asks for python-{match[1]}, which no source has; the Pythons to be had "
            f"are {python_sources()}; the Pangeo base runs python-{base_python}")
    return match[1]


def check_requirements_text(text: str, name: str, files: set[str]) -> bool:
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
    """Whether the repository root is a Python package to install: a setup.py, or, as
    repo2docker decides, a pyproject.toml with both a [project] and a [build-system]
    table (many hold only tool settings, and a [project] without a build system is an
    application's, as `uv init` writes one)."""
    if "setup.py" in files:
        return True
    if "pyproject.toml" not in files:
        return False
    text = read_text(checkout, "pyproject.toml")
    return all(re.search(rf"^\s*\[{table}\]", text, re.M)
               for table in ("project", "build-system"))


def _apt_packages(checkout: Checkout, apt_txt: str | None) -> tuple[str, ...]:
    return parse_apt_txt(read_text(checkout, apt_txt), apt_txt) if apt_txt else ()


# repo2docker tries its buildpacks in one order (its app.py: Dockerfile, R and Julia,
# conda, Pipfile, then requirements.txt with the root package): the first whose files are
# present builds the image and the others' files are ignored. pangeo-binder follows that
# order. Its own lock comes first among the pip files (it is the export of whichever of
# them the repository has), and a PEP 751 pylock.toml and a uv.lock, which repo2docker
# does not read, come before requirements.txt, since a lock pins what requirements
# would resolve.
PIP_SOURCES = (LOCK_FILENAME, PIPFILE_LOCK, PIPFILE, PYLOCK, UV_LOCK, "requirements.txt")
IGNORE_FILES = (".dockerignore", ".containerignore")


def _ignored_notice(used: str, ignored: list[str], why: str = "repo2docker's order") -> str:
    verb = "is" if len(ignored) == 1 else "are"
    return f"{used} is used; {', '.join(ignored)} {verb} ignored ({why})"


def _python_for(spec: str | None, spec_from: str, runtime: str | None,
                runtime_from: str | None, base_python: str) -> tuple[str | None, str | None]:
    """The Python of a project file's `spec` (requires-python) and runtime.txt: the
    runtime's, which the spec must allow; else the base's when allowed; else, as
    repo2docker does, the newest one pangeo-binder builds that the spec allows."""
    if not spec:
        return runtime, runtime_from
    try:
        allowed = SpecifierSet(spec)
    except InvalidSpecifier:
        raise BinderConfigError(f"{spec_from} asks for Python {spec!r}, which is not a "
                                "version specifier") from None
    if runtime:
        if not allowed.contains(runtime, prereleases=True):
            raise BinderConfigError(f"{runtime_from} asks for python-{runtime} but "
                                    f"{spec_from} asks for Python {spec}; make them agree")
        return runtime, runtime_from
    if allowed.contains(base_python):
        return None, None
    for version in reversed(PYTHON_VERSIONS):
        if allowed.contains(version):
            return version, spec_from
    raise BinderConfigError(f"{spec_from} asks for Python {spec}; pangeo-binder builds "
                            f"Python {PYTHON_VERSIONS[0]} to {PYTHON_VERSIONS[-1]}")


def _ignore_patterns(checkout: Checkout, paths: list[str]) -> tuple[str, ...]:
    """The patterns of .dockerignore / .containerignore files (comments and blank lines
    dropped), as repo2docker reads them when it copies the repository."""
    patterns = []
    for path in paths:
        for line in read_text(checkout, path).splitlines():
            if (line := line.strip()) and not line.startswith("#"):
                patterns.append(line)
    return tuple(patterns)


def detect(checkout: Checkout, base_python: str, relax: bool = False) -> BinderConfig:
    """The repository's binder files. With `relax`, a runtime.txt asking for a Python no
    source has is read as written: --relax drops it (pangeo_binder.builder.relax)."""
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

    # repo2docker reads them from the binder directory; the root's is honoured too, so
    # that a file a repository keeps out of images stays out when binder/ is added.
    ignore_files = [name for name in dict.fromkeys(
        (*(f"{binder_dir}/{n}" for n in IGNORE_FILES if binder_dir), *IGNORE_FILES))
        if name in files]
    ignore_patterns = _ignore_patterns(checkout, ignore_files)
    root_package = ([name for name in ("setup.py", "pyproject.toml") if name in files]
                    if not binder_dir and _declares_package(checkout, files) else [])
    pip_files = [path for name in PIP_SOURCES if (path := found(name))]

    if dockerfile := found("Dockerfile"):
        environments = [path for name in (*CONDA_ENVIRONMENT_FILENAMES, CONDA_LOCK_FILENAME)
                        if (path := found(name))]
        ignored = [*environments, *pip_files]
        return BinderConfig(
            binder_dir=binder_dir, dockerfile=dockerfile, ignore_patterns=ignore_patterns,
            warnings=(f"{dockerfile} is built as is: it bypasses the pinned Pangeo "
                      "environment and its reproducibility guarantees",),
            notices=(_ignored_notice(dockerfile, ignored),) if ignored else (),
        )

    for filename, reason in _UNSUPPORTED.items():
        if path := found(filename):
            raise BinderConfigError(f"{path}: {reason}")

    warnings, notices = [], []
    if binder_dir and _declares_package(checkout, files):
        warnings.append(f"the repository's own package is not installed, as {binder_dir}/ "
                        "exists (repo2docker's rule); add `.` to "
                        f"{binder_dir}/requirements.txt if the notebooks import it")

    environments = [path for name in CONDA_ENVIRONMENT_FILENAMES if (path := found(name))]
    if len(environments) > 1:
        raise BinderConfigError(f"both {environments[0]} and {environments[1]} exist; "
                                "keep one of them")
    conda_lock = found(CONDA_LOCK_FILENAME)
    runtime = found("runtime.txt")
    if environments or conda_lock:
        ignored = [*pip_files, *([runtime] if runtime else []), *root_package]
        if ignored:
            notices.append(_ignored_notice(
                environments[0] if environments else conda_lock, ignored,
                "repo2docker's order; the conda environment decides the packages and the "
                "Python: list pip packages under pip: in the environment file"))
        return BinderConfig(
            binder_dir=binder_dir, apt_packages=_apt_packages(checkout, found("apt.txt")),
            post_build=found("postBuild"), start=found("start"),
            conda_environment=environments[0] if environments else None,
            conda_lock=conda_lock, ignore_patterns=ignore_patterns,
            warnings=tuple(warnings), notices=tuple(notices))

    source = pip_files[0] if pip_files else None
    filename = source.rsplit("/", 1)[-1] if source else None
    # repo2docker's Pipfile buildpack does not install the root package; the locks
    # install it when they lock it (its own `.` or `-e .` entry)
    pipenv = filename in (PIPFILE, PIPFILE_LOCK)
    ignored = [*pip_files[1:], *(root_package if pipenv else [])]
    if filename == PIPFILE_LOCK and ignored[:1] == [source.removesuffix(".lock")]:
        # pipenv's own rule (repo2docker runs `pipenv install --ignore-pipfile`)
        notices.append(_ignored_notice(source, ignored[:1], "a Pipfile.lock is installed "
                                                            "as locked"))
        ignored = ignored[1:]
    if ignored:
        notices.append(_ignored_notice(source, ignored))
    if requirements3 := found("requirements3.txt"):
        warnings.append(f"{requirements3} is ignored: repo2docker reads it only beside "
                        "runtime.txt python-2.7; list the packages in requirements.txt")

    runtime_version = (parse_runtime_txt(read_text(checkout, runtime), base_python, runtime,
                                         any_python=relax) if runtime else None)
    requirements = source if filename == "requirements.txt" else None
    lists_repository = False
    if requirements:
        lists_repository = check_requirements_text(read_text(checkout, requirements),
                                               requirements, files)
    install_repository = (filename in ("requirements.txt", None) and not binder_dir
                          and not lists_repository and _declares_package(checkout, files))
    spec, spec_from = None, ""
    if filename in (PIPFILE_LOCK, PIPFILE, PYLOCK, UV_LOCK):
        spec, spec_from = _project_python(checkout, source, filename, found)
    elif install_repository and "pyproject.toml" in files:
        from .python_projects import parse_toml

        project = parse_toml(read_text(checkout, "pyproject.toml"), "pyproject.toml")
        spec = (project.get("project") or {}).get("requires-python")
        spec_from = "pyproject.toml"
    python_version, python_from = _python_for(spec, spec_from, runtime_version, runtime,
                                              base_python)
    return BinderConfig(
        binder_dir=binder_dir,
        requirements=requirements,
        install_repository=install_repository,
        apt_packages=_apt_packages(checkout, found("apt.txt")),
        post_build=found("postBuild"),
        start=found("start"),
        python_version=python_version,
        python_from=python_from,
        lock_file=source if filename == LOCK_FILENAME else None,
        python_project=source if filename in (PIPFILE_LOCK, PIPFILE, PYLOCK, UV_LOCK)
        else None,
        ignore_patterns=ignore_patterns,
        warnings=tuple(warnings),
        notices=tuple(notices),
    )


def _project_python(checkout: Checkout, source: str, filename: str,
                    found) -> tuple[str | None, str]:
    """The Python a project file asks for (a Pipfile.lock's, else its Pipfile's), read
    here so that a malformed file fails before any build."""
    from . import python_projects as projects

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
    if spec is None and filename == PIPFILE_LOCK and (pipfile := found(PIPFILE)):
        pipfile_text = read_text(checkout, pipfile)
        projects.parse_toml(pipfile_text, pipfile)
        return python_requires(pipfile_text, PIPFILE), pipfile
    return spec, source
