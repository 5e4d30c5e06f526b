"""Locks: the pinned Pangeo base, and each repository's packages.

All are uv's requirements format with exact versions and hashes for linux x86_64 and the
base image's Python. A repository's requirements are resolved with every base pin as a
constraint, so that its image shares the base's layers and versions. A repository whose
pins need other versions of base packages (an old tutorial's `numpy==1.26.4`) gets a
standalone environment instead: its requirements plus the session's integration set
(environments/session-integration), resolved without the base, where its own pins win.
Notebook client, Dask scheduler and workers still agree, since workers run the session's
image. A deployment that wants one stack for everyone sets the strict policy, and such
pins are refused as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib.metadata import version as package_version
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import LockError, PinConflictError
from ..events import Emit, Event, Phase
from ..resources import environment_dir
from .binder_files import (
    LOCK_FILE_LIMIT,
    BinderConfig,
    read_text,
    repository_files,
)
from .fetch import Checkout
from .pylock import requirements_lock
from .sandbox import WORKDIR, Sandbox

BASE_PYTHON = "3.11"  # Debian bookworm's python3, which the base image installs
PYTHON_PLATFORM = "x86_64-manylinux_2_28"
# The package names a requirements text starts its lines with.
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", re.M)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def marker_environment(python: str = BASE_PYTHON) -> dict[str, str]:
    """PEP 508 marker values of the images' platform with Python `python`."""
    return {
        "python_version": python, "python_full_version": f"{python}.0",
        "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
        "os_name": "posix", "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }


_MARKER_ENV = marker_environment()


# Lock lines that install from the repository itself (`-e .`, `.`, `./pkg`): the
# repository is copied into the image after the environment layers, so these are
# installed (without dependencies: the lock has them) after that copy.
_LOCAL_LINE = re.compile(r"^(?:-e\s+|--editable\s+)?\.(?:/[^\s\[]*)?(?:\[[^\]]*\])?$")
# `name @ git+https://...@<commit>`: uv locks a git requirement to a commit, but a git
# checkout has no file hash to check.
_VCS_LINE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?\s*@\s*(?:git|hg|svn|bzr)\+\S+$")


@dataclass(frozen=True)
class Lock:
    """A lockfile's text and the versions it pins (canonical name -> version); for a
    resolution made here, also uv's pylock.toml of it (`resolution`), which names every
    chosen file by URL and hash: the image installs those files (see pylock.py)."""

    text: str
    resolution: str = ""

    @cached_property
    def pins(self) -> Mapping[str, str]:
        pins = {}
        for line in self.text.splitlines():
            if match := _PIN.match(line):
                pins[canonicalize_name(match[1])] = match[2]
        return pins

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @cached_property
    def local(self) -> tuple[str, ...]:
        """The repository's own packages (`-e .`, `.`), installed after its copy."""
        return tuple(ln.strip() for ln in self.text.splitlines() if _LOCAL_LINE.match(ln.strip()))

    @cached_property
    def vcs(self) -> tuple[str, ...]:
        """Requirements from git, each at the commit uv resolved."""
        return tuple(ln.strip() for ln in self.text.splitlines() if _VCS_LINE.match(ln.strip()))

    @cached_property
    def hashed(self) -> str:
        """What `uv pip install --require-hashes` takes: the lock without its local and
        git lines (which carry no hashes)."""
        skip = set(self.local) | set(self.vcs)
        return "".join(ln for ln in self.text.splitlines(keepends=True)
                       if ln.strip() not in skip)

    def moved(self, base: Lock) -> dict[str, tuple[str, str]]:
        """The base packages this lock pins at other versions: name -> (its, the base's)."""
        return {name: (version, base.pins[name]) for name, version in self.pins.items()
                if base.pins.get(name, version) != version}

    def standalone(self, base: Lock) -> bool:
        """Whether this is a whole environment of its own rather than extras on `base`
        (it moves base versions; a lock for another Python always is one)."""
        return bool(self.moved(base)) or self.python not in (None, BASE_PYTHON)

    @cached_property
    def python(self) -> str | None:
        """The Python it was resolved for, as its header says."""
        match = re.search(r"^# exact versions and hashes for Python (\d+\.\d+) ", self.text,
                          re.M)
        return match[1] if match else None


BASE_ENVIRONMENT = "pangeo-notebook"
# pangeo-binder's own services (the BinderHub builder, the JupyterHub hub).
SERVICE_ENVIRONMENT = "pangeo-binder"
# py-rattler for the build stage that links a conda lock into an image.
CONDA_INSTALLER_ENVIRONMENT = "conda-installer"
ENVIRONMENTS = (BASE_ENVIRONMENT, SERVICE_ENVIRONMENT, CONDA_INSTALLER_ENVIRONMENT)


def environment_lock_path(name: str) -> Path:
    return environment_dir(name) / "requirements.lock"


def base_lock_path() -> Path:
    return environment_lock_path(BASE_ENVIRONMENT)


def load_base_lock() -> Lock:
    return Lock(base_lock_path().read_text(encoding="utf-8"))


def check_pins(lock: Lock, base: Lock, name: str) -> None:
    """Refuse a lock that moves any base pin."""
    for package, wanted in lock.pins.items():
        pinned = base.pins.get(package)
        if pinned is not None and pinned != wanted:
            raise PinConflictError(
                f"{name} pins {package}=={wanted} but the Pangeo base pins "
                f"{package}=={pinned}; a repository may add packages, not change base versions"
            )


@dataclass(frozen=True)
class PinConflict:
    """A requirement line that no version pinned by the base satisfies."""

    name: str  # the file
    number: int  # its line
    line: str
    package: str
    pinned: str
    written: str = ""  # the line as the file writes it, when `line` is its translation

    def message(self, pinned_by: str) -> str:
        asks = (f"{self.name} asks for {self.written} ({self.line} on PyPI)" if self.written
                else f"{self.name} line {self.number} asks for {self.line}")
        return (f"{asks} but {pinned_by} pins {self.package}=={self.pinned}; use a range "
                f"that includes {self.pinned}, or drop the pin")


def pin_conflicts(text: str, pins: Mapping[str, str], name: str,
                  written: Mapping[str, str] = {}) -> list[PinConflict]:
    """The requirements of `text` that the `pins` cannot satisfy. uv would refuse them
    too; finding them first gives a message a maintainer can act on without reading a
    resolver explanation. `written` maps translated lines to what the file says."""
    conflicts = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue  # URLs and other forms: uv has the last word
        if requirement.marker and not requirement.marker.evaluate(_MARKER_ENV):
            continue
        package = canonicalize_name(requirement.name)
        pinned = pins.get(package)
        if pinned and not requirement.specifier.contains(pinned, prereleases=True):
            conflicts.append(PinConflict(name, number, line, package, pinned,
                                         written.get(line, "")))
    return conflicts


def check_requirements(text: str, base: Lock | Mapping[str, str], name: str,
                       pinned_by: str = "the Pangeo base") -> None:
    """Refuse a requirement the base pin cannot satisfy, naming both versions."""
    pins = base.pins if isinstance(base, Lock) else base
    if conflicts := pin_conflicts(text, pins, name):
        raise PinConflictError(conflicts[0].message(pinned_by))


def _one_line(stderr: str) -> str:
    """uv's error and its cause, on one line."""
    lines = [ln.strip().removeprefix("error:").removeprefix("cause:").strip()
             for ln in stderr.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("Using ", "Resolved ", "warning:"))]
    return " ".join(lines) or "uv failed"


def _compile_command(uv: str, requirements: Sequence[str], constraints: str | None,
                     custom_command: str, python_version: str, pylock: bool) -> list[str]:
    """`uv pip compile` for the base's Python (or `python_version`) and platform, with
    hashes: as requirements, or with `pylock` as pylock.toml (PEP 751: each package's
    one file for that platform, with its URL)."""
    return [
        uv, "pip", "compile", *requirements,
        "--python-version", python_version, "--python-platform", PYTHON_PLATFORM,
        "--no-header", "--no-progress", "--quiet",
        *(["--format", "pylock.toml"] if pylock else
          ["--generate-hashes", "--custom-compile-command", custom_command]),
        *(["--constraint", constraints] if constraints else []),
    ]


def _constraints_text(constraints: Mapping[str, str]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in sorted(constraints.items()))


def compile_trusted(requirements: Path, custom_command: str,
                    preferred: Path | None = None) -> str:
    """Resolve one of pangeo-binder's own environments (its specs are ours, not a
    repository's) with the uv beside pangeo-binder. The versions of the lock
    `preferred` are kept wherever the specs allow them (uv reads its output file as
    preferences): adding a package to the specs adds it, and moves nothing else."""
    from uv import find_uv_bin

    command = _compile_command(find_uv_bin(), [requirements.name], None, custom_command,
                               BASE_PYTHON, pylock=False)
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "requirements.lock"
        if preferred is not None and preferred.is_file():
            shutil.copyfile(preferred, output)
        result = subprocess.run([*command, "--output-file", str(output)],
                                capture_output=True, text=True, check=False,
                                cwd=requirements.parent, env={**os.environ, "NO_COLOR": "1"})
        if result.returncode != 0:
            raise LockError(_one_line(result.stderr))
        return output.read_text(encoding="utf-8")


def compile_in_sandbox(sandbox: Sandbox, files: Mapping[str, bytes],
                       requirements: str | Sequence[str],
                       constraints: Mapping[str, str] | None, custom_command: str,
                       python_version: str = BASE_PYTHON, pylock: bool = False,
                       extra_inputs: Mapping[str, str] | None = None) -> str:
    """Resolve a repository's `requirements` (names among `files`, which hold whatever
    they include) in a throwaway container: building an sdist for its metadata runs the
    package's code there, never here. It runs at the repository's root, where pip (and
    repo2docker) resolve `-e .`. `extra_inputs` (name -> text) are resolved with them.
    The constraints and extra files have fixed names, so the lock's annotations name no
    temporary path."""
    inputs = {f"repo/{name}": data for name, data in files.items()}
    names = [requirements] if isinstance(requirements, str) else list(requirements)
    for name, text in (extra_inputs or {}).items():
        inputs[f"pangeo-binder/{name}"] = text.encode()
        names.append(f"../pangeo-binder/{name}")
    constraints_path = None
    if constraints:
        inputs["base-constraints.txt"] = _constraints_text(constraints).encode()
        constraints_path = f"{WORKDIR}/base-constraints.txt"
    command = _compile_command("uv", names, constraints_path, custom_command,
                               python_version, pylock)
    result = sandbox.run(command, inputs, workdir="repo")
    if result.exit_code != 0:
        raise LockError(_one_line(result.stderr))
    return result.stdout


def _cache_key(requirements_text: str, base: Lock, standalone: bool,
               python: str = BASE_PYTHON) -> str:
    key = {"requirements": requirements_text, "base": base.digest, "python": python,
           "platform": PYTHON_PLATFORM, "uv": package_version("uv")}
    if standalone:
        key["integration"] = [_integration_set(group) for group in INTEGRATION_GROUPS]
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


# The session's integration set, environments/session-integration/*.in: "core" always,
# "dask" where the repository's pins admit it.
INTEGRATION_ENVIRONMENT = "session-integration"
INTEGRATION_GROUPS = ("core", "dask")


def _integration_set(group: str) -> str:
    return (environment_dir(INTEGRATION_ENVIRONMENT) / f"{group}.in").read_text()


def use_repository_lock(checkout: Checkout, name: str, base: Lock, emit: Emit, *,
                        strict: bool = False) -> Lock:
    """A repository's committed lock `name`, used as is: extras on the base, or (unless
    `strict`) a standalone environment when its pins need other versions of base
    packages (see the module's docstring)."""
    emit(Event(Phase.BUILDING, f"Using the repository's lock {name}"))
    lock = Lock(read_text(checkout, name, LOCK_FILE_LIMIT))
    if strict:
        check_pins(lock, base, name)
    elif lock.standalone(base):
        _check_standalone_lock(lock, name)
        emit(_standalone_notice(name, lock, base))
    return lock


def resolve_python_project(checkout: Checkout, config: BinderConfig, base: Lock,
                            cache_dir: Path, emit: Emit, sandbox: Sandbox, *,
                            strict: bool) -> Lock:
    """A Pipfile, Pipfile.lock, pylock.toml or uv.lock (pangeo_binder.builder.python_projects),
    resolved as its requirements would be; a lock's packages pinned exactly and
    hash-checked."""
    from . import python_projects as projects
    from .binder_files import check_requirements_text

    source = config.python_project
    assert source is not None
    directory, _, filename = source.rpartition("/")
    python = config.python_version or BASE_PYTHON
    text = read_text(checkout, source, LOCK_FILE_LIMIT)
    if filename == projects.PIPFILE:
        requirements = projects.pipfile_requirements(text, source, directory)
    elif filename == projects.PIPFILE_LOCK:
        requirements = projects.pipfile_lock_requirements(text, source, directory)
    elif filename == projects.PYLOCK:
        requirements = projects.pylock_requirements(text, source, directory,
                                                    marker_environment(python))
    else:  # uv.lock, read by uv itself, in the sandbox: the lock is untrusted input
        emit(Event(Phase.BUILDING, f"Exporting {source} with uv (in a sandbox container)"))
        result = sandbox.run(projects.UV_EXPORT, {
            f"repo/{name}": data for name, data in repository_files(checkout).items()},
            workdir=f"repo/{directory}".rstrip("/"))
        if result.exit_code != 0:
            raise LockError(f"cannot export {source}: {_one_line(result.stderr)}")
        requirements = projects.rebase_local(result.stdout, directory, source)
    requirements, hashes = projects.split_hashes(requirements)
    check_requirements_text(requirements, source, set(checkout.files))
    if filename != projects.PIPFILE:
        count = f"{len(hashes)} package{'' if len(hashes) == 1 else 's'}"
        emit(Event(Phase.BUILDING, f"Notice: {source} is installed as locked: {count} "
                                   "pinned exactly, hash-checked"))
    inputs = PipInputs(name=source, text=requirements, files=[],
                       extra={"project.in": requirements}, python=python,
                       python_from=config.python_from or source)
    lock = resolve_pip_lock(inputs, checkout, base, cache_dir, emit, sandbox, strict=strict)
    if lock.resolution:
        projects.check_locked_hashes(lock.resolution, hashes, source)
    return lock


@dataclass(frozen=True)
class PipInputs:
    """What a repository's pip lock is resolved from."""

    name: str  # for messages: the requirements file, or what stands for it
    text: str  # the requirements' text (checked against the base pins, cache key)
    files: list[str]  # repository files given to uv
    extra: dict[str, str]  # generated inputs given to uv (name -> text)
    python: str = BASE_PYTHON
    python_from: str = "runtime.txt"  # what asked for `python`
    header: tuple[str, ...] = ()  # comment lines the lock keeps (what was translated)
    written: Mapping[str, str] = field(default_factory=dict)  # requirement -> as written
    # Repository files uv gets with another text (a requirements file --relax rewrote).
    replaced: Mapping[str, str] = field(default_factory=dict)


def resolve_pip_lock(inputs: PipInputs, checkout: Checkout, base: Lock, cache_dir: Path,
                     emit: Emit, sandbox: Sandbox, *, strict: bool = False) -> Lock:
    """Resolve `inputs` against the base, or as a standalone environment (see the
    module's docstring)."""
    name, text, python = inputs.name, inputs.text, inputs.python
    other_python = python != BASE_PYTHON
    if other_python and strict:
        raise PinConflictError(f"{inputs.python_from} asks for python-{python} but the "
                               f"Pangeo base has Python {BASE_PYTHON}; change it to "
                               f"python-{BASE_PYTHON} or remove runtime.txt")
    conflicts = pin_conflicts(text, base.pins, name, inputs.written)
    if conflicts and strict:
        raise PinConflictError(conflicts[0].message("the Pangeo base"))
    # Includes (-r/-c), --find-links and the repository's own packages depend on files
    # the key does not cover: resolve those always (another repository with the same
    # text must never get a lock made from this one's files).
    cacheable = not (re.search(r"^\s*(-r|-c|-f|--requirement|--constraint|--find-links)\b",
                               text, re.M)
                     or "repository.in" in inputs.extra or _LOCAL_IN_TEXT.search(text))
    if other_python:
        emit(Event(Phase.BUILDING, f"Notice: {inputs.python_from} asks for "
                                   f"python-{python}: the repository gets a standalone "
                                   f"environment on Python {python} (the Pangeo base runs "
                                   f"{BASE_PYTHON})"))
    for standalone in (False,) if strict else (False, True):
        key = _cache_key(text, base, standalone, python)
        cached = cache_dir / "locks" / f"{key}.lock"
        if cacheable and cached.is_file():
            emit(Event(Phase.BUILDING, f"Using the cached lock of {name}"))
            lock = _read_cached(cached)
            if lock.standalone(base) and not other_python:
                emit(_standalone_notice(name, lock, base, text))
            _vcs_notice(name, lock, emit)
            return lock
    files = {**repository_files(checkout),
             **{path: text.encode() for path, text in inputs.replaced.items()}}
    lock = None
    if not conflicts and not other_python:
        emit(Event(Phase.BUILDING, f"Resolving {name} against the Pangeo base (in a "
                                   "sandbox container)"))
        try:
            resolved = compile_in_sandbox(sandbox, files, inputs.files, base.pins,
                                          "pangeo-binder lock", pylock=True,
                                          extra_inputs=inputs.extra)
            lock = _from_resolution(_header(f"{name} resolved against the pinned Pangeo "
                                            "base") + _comments(inputs.header), resolved)
        except LockError as exc:
            if strict:
                raise LockError(f"cannot resolve {name} against the Pangeo base: "
                                f"{exc}") from None
            emit(Event(Phase.BUILDING, f"{name} does not fit the Pangeo base: {exc}"))
    if lock is None:
        lock = _resolve_standalone(sandbox, files, inputs, name, python, emit)
        if not other_python:
            emit(_standalone_notice(name, lock, base, text))
    if cacheable:
        key = _cache_key(text, base, lock.standalone(base) or other_python, python)
        _write_cached(cache_dir / "locks" / f"{key}.lock", lock)
    _vcs_notice(name, lock, emit)
    return lock


def _vcs_notice(name: str, lock: Lock, emit: Emit) -> None:
    """Git requirements are pinned to a commit, but a checkout has no file hash."""
    if lock.vcs:
        pinned = ", ".join(f"{line.split('@', 1)[0].strip()} at {line.rsplit('@', 1)[1][:12]}"
                           for line in lock.vcs)
        emit(Event(Phase.BUILDING, f"Notice: {name} installs {pinned} from git: locked to "
                                   "that commit, but hash-checking cannot cover a git "
                                   "checkout"))


_LOCAL_IN_TEXT = re.compile(r"^\s*(?:(?:-e|--editable)\s+)?\.(?:/|\s|$)", re.M)


def _resolve_standalone(sandbox: Sandbox, files: Mapping[str, bytes], inputs: PipInputs,
                        name: str, python: str, emit: Emit) -> Lock:
    """The repository's requirements with the session's integration set, resolved
    without the base; without the Dask integration when its pins admit none."""
    emit(Event(Phase.BUILDING, f"Resolving {name} as a standalone environment (in a "
                               "sandbox container)"))
    groups = {f"{group}.in": _integration_set(group) for group in INTEGRATION_GROUPS}
    try:
        resolved = compile_in_sandbox(sandbox, files, inputs.files, None,
                                      "pangeo-binder lock", python, pylock=True,
                                      extra_inputs={**inputs.extra, **groups})
    except LockError as exc:
        try:
            resolved = compile_in_sandbox(sandbox, files, inputs.files, None,
                                          "pangeo-binder lock", python, pylock=True,
                                          extra_inputs={**inputs.extra,
                                                        "core.in": groups["core.in"]})
        except LockError:
            raise LockError(f"cannot resolve {name}: {exc}; `pangeo-binder build "
                            "--relax` drops the pins that cannot be met") from None
        emit(Event(Phase.BUILDING, f"Notice: {name} admits no version of the session's "
                                   "Dask integration (dask-labextension, "
                                   "jupyter-server-proxy, dask-kubernetes), so the image "
                                   f"has none: {exc}"))
    return _from_resolution(_header(f"{name} resolved as a standalone environment, with "
                                    "the session's integration set", python=python)
                            + _comments(inputs.header), resolved, python)


def _from_resolution(header: str, resolution: str, python: str = BASE_PYTHON) -> Lock:
    """The lock of a pylock.toml resolution: its requirements form after `header`."""
    return Lock(header + requirements_lock(resolution, marker_environment(python)),
                resolution=resolution)


def _read_cached(path: Path) -> Lock:
    resolution = path.with_suffix(".pylock.toml")
    return Lock(path.read_text(encoding="utf-8"),
                resolution=resolution.read_text(encoding="utf-8")
                if resolution.is_file() else "")


def _write_cached(path: Path, lock: Lock) -> None:
    # The resolution first: a reader that finds the lock finds its files too.
    if lock.resolution:
        write_atomically(path.with_suffix(".pylock.toml"), lock.resolution)
    write_atomically(path, lock.text)


def _comments(lines: Sequence[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def _check_standalone_lock(lock: Lock, name: str) -> None:
    missing = [p for p in ("jupyterlab", "jupyterhub", "ipykernel") if p not in lock.pins]
    if missing:
        raise LockError(f"{name} moves base packages off the Pangeo base but lacks "
                        f"{', '.join(missing)}, which a session needs; export it again "
                        "with `pangeo-binder lock`")


def _standalone_notice(name: str, lock: Lock, base: Lock, text: str = "") -> Event:
    """One line naming what moved the repository off the base: the packages its own
    requirements (`text`) name first, then the others its pins pulled along."""
    moved = lock.moved(base)
    named = {canonicalize_name(m[1]) for m in _NAME.finditer(text)}
    order = sorted(moved.items(), key=lambda item: (item[0] not in named, item[0]))
    shown = ", ".join(f"{p} {mine} (base {theirs})" for p, (mine, theirs) in order[:5])
    more = f" and {len(moved) - 5} more" if len(moved) > 5 else ""
    return Event(Phase.BUILDING, f"Notice: {name} moves {shown}{more} off the Pangeo "
                                 "base: it gets a standalone environment where its own "
                                 "pins win")


def write_atomically(path: Path, text: str) -> None:
    """Write a cache file so that a reader sees all of it or nothing (builds may run in
    parallel)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False,
                                     suffix=".tmp") as out:
        out.write(text)
    os.replace(out.name, path)


def _header(what: str, command: str = "pangeo-binder lock", python: str = BASE_PYTHON) -> str:
    return (f"# {what}, made by `{command}` (uv {package_version('uv')}):\n"
            f"# exact versions and hashes for Python {python} on {PYTHON_PLATFORM}.\n")


def lock_environment(name: str = BASE_ENVIRONMENT, output: Path | None = None,
                     upgrade: bool = False) -> Lock:
    """Re-resolve an environment's top-level specs into its lock: keeping the versions
    of its current lock where the specs allow, or, with `upgrade`, the newest."""
    specs = environment_dir(name) / "requirements.in"
    command = "pangeo-binder lock" + ("" if name == BASE_ENVIRONMENT else
                                      f" --environment {name}")
    text = compile_trusted(specs, command,
                           None if upgrade else environment_lock_path(name))
    what = ("The pinned Pangeo base environment" if name == BASE_ENVIRONMENT else
            f"The pinned {name} environment")
    lock = Lock(_header(what, command) + text)
    (output or environment_lock_path(name)).write_text(lock.text, encoding="utf-8")
    return lock
