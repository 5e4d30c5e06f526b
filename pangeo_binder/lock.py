"""Locks: the pinned Pangeo base, and each repository's extras resolved against it.

Both are uv's requirements format with exact versions and hashes for linux x86_64 and the
base image's Python. A repository's requirements are resolved with every base pin as a
constraint: a repo may add packages but never move a base version, so the notebook
client, the Dask scheduler and the workers always agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import version as package_version
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .detect import LOCK_FILE_LIMIT, BinderConfig, read_text, repository_files
from .errors import LockError, PinConflictError
from .events import Emit, Event, Phase
from .fetch import Checkout
from .resources import environment_dir
from .sandbox import WORKDIR, Sandbox

BASE_PYTHON = "3.11"  # Debian bookworm's python3, which the base image installs
PYTHON_PLATFORM = "x86_64-manylinux_2_28"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
_MARKER_ENV = {
    "python_version": BASE_PYTHON, "python_full_version": f"{BASE_PYTHON}.0",
    "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
    "os_name": "posix", "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


@dataclass(frozen=True)
class Lock:
    """A lockfile's text and the versions it pins (canonical name -> version)."""

    text: str

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


def check_requirements(text: str, base: Lock, name: str,
                       pinned_by: str = "the Pangeo base") -> None:
    """Refuse a requirement the base pin cannot satisfy, naming both versions.

    uv would refuse it too; checking first gives the message a maintainer can act on
    without reading a resolver explanation.
    """
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
        pinned = base.pins.get(package)
        if pinned and not requirement.specifier.contains(pinned, prereleases=True):
            raise PinConflictError(
                f"{name} line {number} asks for {line} but {pinned_by} pins "
                f"{package}=={pinned}; use a range that includes {pinned}, or drop the pin"
            )


def _one_line(stderr: str) -> str:
    """uv's error and its cause, on one line."""
    lines = [ln.strip().removeprefix("error:").removeprefix("cause:").strip()
             for ln in stderr.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("Using ", "Resolved ", "warning:"))]
    return " ".join(lines) or "uv failed"


def _compile_command(uv: str, requirements: str, constraints: str | None,
                     custom_command: str, python_version: str, pylock: bool) -> list[str]:
    """`uv pip compile` for the base's Python (or `python_version`) and platform, with
    hashes: as requirements, or with `pylock` as pylock.toml (PEP 751: each package's
    one file for that platform, with its URL)."""
    return [
        uv, "pip", "compile", requirements,
        "--python-version", python_version, "--python-platform", PYTHON_PLATFORM,
        "--no-header", "--no-progress", "--quiet",
        *(["--format", "pylock.toml"] if pylock else
          ["--generate-hashes", "--custom-compile-command", custom_command]),
        *(["--constraint", constraints] if constraints else []),
    ]


def _constraints_text(constraints: Mapping[str, str]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in sorted(constraints.items()))


def compile_trusted(requirements: Path, custom_command: str) -> str:
    """Resolve one of pangeo-binder's own environments (its specs are ours, not a
    repository's) with the uv beside pangeo-binder."""
    from uv import find_uv_bin

    command = _compile_command(find_uv_bin(), requirements.name, None, custom_command,
                               BASE_PYTHON, pylock=False)
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            cwd=requirements.parent, env={**os.environ, "NO_COLOR": "1"})
    if result.returncode != 0:
        raise LockError(_one_line(result.stderr))
    return result.stdout


def compile_in_sandbox(sandbox: Sandbox, files: Mapping[str, bytes], requirements: str,
                       constraints: Mapping[str, str] | None, custom_command: str,
                       python_version: str = BASE_PYTHON, pylock: bool = False) -> str:
    """Resolve a repository's `requirements` (a name among `files`, which hold whatever
    it includes) in a throwaway container: building an sdist for its metadata runs the
    package's code there, never here. The constraints file has a fixed name, so the
    lock's annotations name no temporary path."""
    inputs = {f"repo/{name}": data for name, data in files.items()}
    constraints_path = None
    if constraints:
        inputs["base-constraints.txt"] = _constraints_text(constraints).encode()
        constraints_path = f"{WORKDIR}/base-constraints.txt"
    directory, _, name = f"repo/{requirements}".rpartition("/")
    command = _compile_command("uv", name, constraints_path, custom_command,
                               python_version, pylock)
    result = sandbox.run(command, inputs, workdir=directory)
    if result.exit_code != 0:
        raise LockError(_one_line(result.stderr))
    return result.stdout


def _cache_key(requirements_text: str, base: Lock) -> str:
    key = {"requirements": requirements_text, "base": base.digest, "python": BASE_PYTHON,
           "platform": PYTHON_PLATFORM, "uv": package_version("uv")}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def resolve_repo_lock(checkout: Checkout, config: BinderConfig, base: Lock,
                      cache_dir: Path, emit: Emit, sandbox: Sandbox) -> Lock | None:
    """The repository's extra packages, pinned and hashed; None when it has none.

    A resolved lock is cached by its inputs, so an unchanged repository is not resolved
    again (and keeps its versions, as a committed lockfile would). Resolving runs in
    `sandbox`, with a copy of the repository's files (what its includes, --find-links
    and path requirements may name).
    """
    if config.lock_file:
        emit(Event(Phase.BUILDING, f"Using the repository's lock {config.lock_file}"))
        lock = Lock(read_text(checkout, config.lock_file, LOCK_FILE_LIMIT))
        check_pins(lock, base, config.lock_file)
        return lock
    if not config.requirements:
        return None

    text = read_text(checkout, config.requirements)
    check_requirements(text, base, config.requirements)
    # Includes (-r/-c) pull in other files the key does not cover: resolve those always.
    cacheable = not re.search(r"^\s*(-r|-c|--requirement|--constraint)\b", text, re.M)
    cached = cache_dir / "locks" / f"{_cache_key(text, base)}.lock"
    if cacheable and cached.is_file():
        emit(Event(Phase.BUILDING, f"Using the cached lock of {config.requirements}"))
        return Lock(cached.read_text(encoding="utf-8"))

    emit(Event(Phase.BUILDING, f"Resolving {config.requirements} against the Pangeo base "
                               "(in a sandbox container)"))
    try:
        text = compile_in_sandbox(sandbox, repository_files(checkout), config.requirements,
                                  base.pins, "pangeo-binder lock")
    except LockError as exc:
        raise LockError(f"cannot resolve {config.requirements} against the Pangeo base: "
                        f"{exc}") from None
    lock = Lock(_header(f"{config.requirements} resolved against the pinned Pangeo base")
                + text)
    check_pins(lock, base, config.requirements)
    if cacheable:
        write_atomically(cached, lock.text)
    return lock


def write_atomically(path: Path, text: str) -> None:
    """Write a cache file so that a reader sees all of it or nothing (builds may run in
    parallel)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False,
                                     suffix=".tmp") as out:
        out.write(text)
    os.replace(out.name, path)


def _header(what: str, command: str = "pangeo-binder lock") -> str:
    return (f"# {what}, made by `{command}` (uv {package_version('uv')}):\n"
            f"# exact versions and hashes for Python {BASE_PYTHON} on {PYTHON_PLATFORM}.\n")


def lock_environment(name: str = BASE_ENVIRONMENT, output: Path | None = None) -> Lock:
    """Re-resolve an environment's top-level specs into its lock."""
    specs = environment_dir(name) / "requirements.in"
    command = "pangeo-binder lock" + ("" if name == BASE_ENVIRONMENT else
                                      f" --environment {name}")
    text = compile_trusted(specs, command)
    what = ("The pinned Pangeo base environment" if name == BASE_ENVIRONMENT else
            f"The pinned {name} environment")
    lock = Lock(_header(what, command) + text)
    (output or environment_lock_path(name)).write_text(lock.text, encoding="utf-8")
    return lock
