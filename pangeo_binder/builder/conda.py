"""Conda environments: a repository's environment.yml, solved once, locked, fetched.

The repository's spec is merged with the Pangeo conda base
(environments/pangeo-notebook/environment.yml) and solved for linux-64 by py-rattler, with
no conda binary. Pins of the Pangeo core win: a repository asking for another version of
a core package is refused, naming both. The result is written as a conda-lock unified
lockfile with conda-lock's own models, so `conda-lock install` and micromamba can install
it too; a repository that ships `conda-lock.yml` is installed from it without a solve.

Channels are a setting (PANGEO_BINDER_CONDA_CHANNELS): the operator decides which channels
builds may use and where they live (a mirror, a local file channel); a repository naming
any other channel is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import BinderConfigError, LockError, PinConflictError
from ..events import Emit, Event, Phase
from ..resources import environment_dir
from ..settings import Settings
from ..yaml_file import load_yaml
from .binder_files import LOCK_FILE_LIMIT, read_text
from .fetch import Checkout
from .lock import Lock, check_requirements, compile_in_sandbox, write_atomically
from .sandbox import Sandbox

PLATFORM = "linux-64"
SUBDIRS = (PLATFORM, "noarch")
DEFAULT_CHANNELS = "conda-forge=https://conda.anaconda.org/conda-forge"
# What the image's OS offers a package: Debian bookworm's glibc on x86_64 Linux.
VIRTUAL_PACKAGES = (("__unix", "0", "0"), ("__linux", "6.1", "0"),
                    ("__glibc", "2.36", "0"), ("__archspec", "1", "x86_64"))
# `nodefaults` only says "not Anaconda's defaults", which are never used here.
_IGNORED_CHANNELS = {"nodefaults"}


@dataclass(frozen=True)
class CondaSpec:
    """An environment.yml: its channels, conda dependencies and pip section."""

    name: str  # the file it came from, for messages
    channels: tuple[str, ...]
    dependencies: tuple[str, ...]
    pip: tuple[str, ...] = ()


def parse_environment(text: str, name: str) -> CondaSpec:
    """Read an environment.yml; anything malformed is a one-line error naming the file."""
    data = load_yaml(text, name, BinderConfigError)
    if not isinstance(data, Mapping):
        raise BinderConfigError(f"{name}: expected a mapping with channels and dependencies")

    def strings(value: object, what: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str | int | float)
                                                  for v in value):
            raise BinderConfigError(f"{name}: {what} must be a list of strings")
        return tuple(str(v).strip() for v in value)

    dependencies: list[str] = []
    pip: tuple[str, ...] = ()
    raw = data.get("dependencies")
    if not isinstance(raw, list) or not raw:
        raise BinderConfigError(f"{name}: no dependencies: list the conda packages to install")
    for entry in raw:
        if isinstance(entry, Mapping) and set(entry) == {"pip"}:
            pip += strings(entry["pip"], "the pip: section")
        elif isinstance(entry, str | int | float):
            dependencies.append(str(entry).strip())
        else:
            raise BinderConfigError(f"{name}: dependency {entry!r} is neither a conda "
                                    "spec nor a pip: section")
    for spec in dependencies:
        _match_spec(spec, name)
    return CondaSpec(name=name, channels=strings(data.get("channels"), "channels"),
                     dependencies=tuple(dependencies), pip=pip)


def _match_spec(spec: str, name: str):
    from rattler import MatchSpec
    from rattler.exceptions import InvalidMatchSpecError

    if "::" in spec:
        raise BinderConfigError(f"{name}: {spec!r} names a channel; list the channel under "
                                "channels: instead")
    try:
        # Strict, as the solver parses it: `python ==3.11.*` fails there, not here.
        return MatchSpec(spec, strict=True)
    except InvalidMatchSpecError as exc:
        raise BinderConfigError(f"{name}: {spec!r} is not a conda package spec ({exc})") \
            from None


def base_spec(path: Path | None = None) -> CondaSpec:
    """The Pangeo conda base: the conda twin of the pip base environment, or the
    environment.yml at `path` (the PANGEO_BINDER_CONDA_BASE setting)."""
    path = path or environment_dir() / "environment.yml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BinderConfigError(f"cannot read the conda base {path}: {exc.strerror}") \
            from None
    return parse_environment(text, f"the Pangeo conda base ({path.name})")


def parse_channels(setting: str) -> dict[str, str]:
    """The channel setting: comma-separated `NAME=URL` (or a bare URL, named by itself),
    in priority order."""
    channels = {}
    for item in filter(None, (part.strip() for part in setting.split(","))):
        name, _, url = item.partition("=") if "=" in item else (item, "", item)
        if "://" not in url:
            raise BinderConfigError(f"conda channel setting {item!r}: expected NAME=URL")
        channels[name.strip()] = url.strip().rstrip("/")
    if not channels:
        raise BinderConfigError("the conda channel setting names no channel")
    return channels


def channel_urls(specs: Sequence[CondaSpec], channels: Mapping[str, str]) -> list[str]:
    """The URLs of the channels `specs` name, in the setting's priority order; a channel
    the setting does not know is refused."""
    wanted = set()
    for spec in specs:
        for channel in spec.channels:
            if channel in _IGNORED_CHANNELS:
                continue
            known = channel if channel in channels else next(
                (n for n, url in channels.items() if url == channel.rstrip("/")), None)
            if known is None:
                raise BinderConfigError(
                    f"{spec.name}: unknown channel {channel!r}; this builder uses "
                    f"{', '.join(channels)} (an operator adds channels with "
                    "PANGEO_BINDER_CONDA_CHANNELS)")
            wanted.add(known)
    if not wanted:
        raise BinderConfigError(f"{specs[-1].name}: no channels: list at least conda-forge")
    return [url for name, url in channels.items() if name in wanted]


def check_core_pins(repo: CondaSpec, base: CondaSpec) -> None:
    """Refuse a repository spec the Pangeo core's exact pins cannot satisfy, naming both."""
    from rattler import Version, VersionSpec

    pins = {}
    for spec in base.dependencies:
        match = _match_spec(spec, base.name)
        if match.version and match.version.startswith("=="):
            pins[match.name.normalized] = (spec, match.version.removeprefix("=="))
    for spec in repo.dependencies:
        match = _match_spec(spec, repo.name)
        pinned = pins.get(match.name.normalized)
        if pinned and match.version and not VersionSpec(match.version).matches(
                Version(pinned[1])):
            raise PinConflictError(
                f"{repo.name} asks for {spec} but the Pangeo base pins {pinned[0]}; use a "
                f"range that includes {pinned[1]}, or drop the pin")


@dataclass(frozen=True)
class CondaPackage:
    """One locked conda package: what to fetch, and the hashes it must have."""

    name: str
    version: str
    build: str
    url: str
    sha256: str
    md5: str

    @property
    def filename(self) -> str:
        return urllib.parse.unquote(self.url.rsplit("/", 1)[-1])

    @property
    def key(self) -> str:
        """name-version-build, as in an environment's conda-meta/."""
        return f"{self.name}-{self.version}-{self.build}"


@dataclass(frozen=True)
class PipPackage:
    """One locked package of the pip: section: the file to install and its sha256."""

    name: str
    version: str
    url: str
    sha256: str


@dataclass(frozen=True)
class CondaLock:
    """A conda-lock unified lockfile's text, its linux-64 conda packages and the pip
    packages installed after them."""

    text: str
    packages: tuple[CondaPackage, ...]
    pip_packages: tuple[PipPackage, ...] = ()

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def _build_of(filename: str) -> str:
    stem = filename.removesuffix(".conda").removesuffix(".tar.bz2")
    return stem.rsplit("-", 1)[-1]


def read_lock(text: str, name: str) -> CondaLock:
    """Parse a conda-lock.yml with conda-lock's own parser; keep its linux-64 packages."""
    from conda_lock.lockfile import parse_conda_lock_file
    from pydantic import ValidationError
    from yaml import YAMLError

    with tempfile.TemporaryDirectory(prefix="pangeo-binder-lock-") as tmp:
        path = Path(tmp) / "conda-lock.yml"
        path.write_text(text, encoding="utf-8")
        try:
            lockfile = parse_conda_lock_file(path)
        except YAMLError as exc:
            raise BinderConfigError(f"{name}: not valid YAML ({exc.__class__.__name__})") \
                from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise BinderConfigError(f"{name}: not a conda-lock file ({where}: "
                                    f"{first['msg']})") from None
        except Exception as exc:  # conda-lock's own errors (missing or unknown version)
            raise BinderConfigError(f"{name}: not a conda-lock file ({exc})") from None
    packages, pip = [], []
    for dep in lockfile.package:
        if dep.platform != PLATFORM:
            continue
        if not dep.hash.sha256:
            raise BinderConfigError(f"{name}: {dep.name} has no sha256; pangeo-binder "
                                    "installs only hash-checked packages")
        if dep.manager == "pip":
            pip.append(PipPackage(name=dep.name, version=dep.version, url=dep.url,
                                  sha256=dep.hash.sha256))
            continue
        packages.append(CondaPackage(
            name=dep.name, version=dep.version,
            build=dep.build or _build_of(dep.url.rsplit("/", 1)[-1]),
            url=dep.url, sha256=dep.hash.sha256, md5=dep.hash.md5 or ""))
    if not packages:
        platforms = ", ".join(lockfile.metadata.platforms) or "none"
        raise BinderConfigError(f"{name} has no {PLATFORM} packages (its platforms: "
                                f"{platforms}); lock it with `conda-lock -p {PLATFORM}`")
    return CondaLock(text=text, packages=tuple(packages), pip_packages=tuple(pip))


def solve(specs: Sequence[str], urls: Sequence[str], cache_dir: Path) -> list[dict]:
    """Solve `specs` for linux-64 from the channels at `urls` (strict priority); the
    records as dicts (name, version, build, url, depends, sha256, md5)."""
    request = {"specs": list(specs), "urls": list(urls), "subdirs": list(SUBDIRS),
               "virtual_packages": VIRTUAL_PACKAGES, "cache_dir": str(cache_dir / "rattler")}
    result = subprocess.run([sys.executable, "-m", "pangeo_binder.builder.conda_solver"],
                            input=json.dumps(request), capture_output=True, text=True,
                            check=False)
    try:
        answer = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"the conda solver failed (exit {result.returncode}): "
                           f"{result.stderr.strip()[-500:]}") from None
    if answer.get("error") == "solve":
        raise LockError(f"cannot solve: {_one_line(answer['message'])}")
    if answer.get("error") == "channels":
        raise LockError(f"cannot read the channels: {_one_line(answer['message'])}")
    if "error" in answer:
        raise RuntimeError(answer["message"])
    return answer["records"]


def _one_line(message: str) -> str:
    lines = (line.strip(" └─├│\t") for line in message.splitlines())
    return " ".join(line for line in lines if line).removeprefix(
        "Cannot solve the request because of: ").rstrip(".")


def write_lock(records: Sequence[dict], pip: Sequence[PipPackage],
               inputs: Sequence[CondaSpec], urls: Sequence[str]) -> CondaLock:
    """The solved `records` and the `pip` section's packages as a conda-lock unified
    lockfile (conda-lock's models)."""
    from conda_lock.lockfile import write_conda_lock_file
    from conda_lock.lockfile.v1.models import HashModel, LockMeta
    from conda_lock.lockfile.v2prelim.models import LockedDependency, Lockfile
    from conda_lock.models.channel import Channel

    packages = []
    for record in records:
        if not record["sha256"]:
            raise LockError(f"{record['url']} has no sha256 in its channel's index; "
                            "pangeo-binder installs only hash-checked packages")
        dependencies = {}
        for spec in record["depends"]:
            # conda-lock's form: name -> version constraint ("" for any version).
            dep_name, _, rest = spec.partition(" ")
            dependencies[dep_name] = rest.split(" ")[0] if rest else ""
        packages.append(LockedDependency(
            name=record["name"], version=record["version"], manager="conda",
            platform=PLATFORM, dependencies=dependencies, url=record["url"],
            hash=HashModel(md5=record["md5"], sha256=record["sha256"]),
            build=record["build"], categories={"main"}))
    packages += [LockedDependency(
        name=package.name, version=package.version, manager="pip", platform=PLATFORM,
        url=package.url, hash=HashModel(sha256=package.sha256), categories={"main"})
        for package in pip]
    spec_hash = hashlib.sha256(json.dumps(
        [[s.channels, s.dependencies, s.pip] for s in inputs]).encode()).hexdigest()
    lockfile = Lockfile(package=packages, metadata=LockMeta(
        content_hash={PLATFORM: spec_hash}, channels=[Channel.from_string(u) for u in urls],
        platforms=[PLATFORM], sources=[spec.name for spec in inputs[1:]],
        # No creation time: a lock is a pure function of its inputs (same inputs, same
        # bytes, same image tag, on any machine and at any time).
        custom_metadata={"locked_by": f"pangeo-binder (py-rattler "
                                      f"{package_version('py-rattler')})"}))
    with tempfile.TemporaryDirectory(prefix="pangeo-binder-lock-") as tmp:
        path = Path(tmp) / "conda-lock.yml"
        write_conda_lock_file(lockfile, path, metadata_choices=None)
        text = path.read_text(encoding="utf-8")
    conda = tuple(CondaPackage(name=r["name"], version=r["version"], build=r["build"],
                               url=r["url"], sha256=r["sha256"], md5=r["md5"])
                  for r in records)
    return CondaLock(text=text, packages=conda, pip_packages=tuple(pip))


def lock_environment_yml(repo: CondaSpec, settings: Settings, emit: Emit,
                         sandbox: Sandbox) -> CondaLock:
    """Merge `repo` with the Pangeo conda base, solve once, and lock. A lock is cached by
    its inputs, so an unchanged environment.yml is not solved again."""
    base = base_spec(settings.conda_base)
    check_core_pins(repo, base)
    urls = channel_urls([base, repo], parse_channels(settings.conda_channels or
                                                     DEFAULT_CHANNELS))
    cache_dir = settings.cache_dir
    specs = [*base.dependencies, *repo.dependencies]
    key = hashlib.sha256(json.dumps(
        # "format" 2: locks without a creation time (an older cached lock has one).
        {"format": 2, "specs": specs, "pip": repo.pip, "urls": urls,
         "uv": package_version("uv"),
         "rattler": package_version("py-rattler"), "virtual": VIRTUAL_PACKAGES}
    ).encode()).hexdigest()
    cached = cache_dir / "conda-locks" / f"{key}.yml"
    if cached.is_file():
        emit(Event(Phase.BUILDING, f"Using the cached lock of {repo.name}"))
        return read_lock(cached.read_text(encoding="utf-8"), repo.name)
    emit(Event(Phase.BUILDING, f"Solving {repo.name} with the Pangeo conda base for "
                               f"{PLATFORM}"))
    try:
        records = solve(specs, urls, cache_dir)
    except LockError as exc:
        raise LockError(f"{repo.name}: {exc}") from None
    pip = lock_pip_section(repo, records, sandbox) if repo.pip else []
    lock = write_lock(records, pip, [base, repo], urls)
    write_atomically(cached, lock.text)
    return lock


def lock_pip_section(spec: CondaSpec, records: Sequence[dict],
                     sandbox: Sandbox) -> list[PipPackage]:
    """Resolve the pip: section with uv for the environment's Python, every conda
    package's version as a constraint (a pip line may add packages, not move conda's);
    packages conda already installs are left to conda. uv runs in `sandbox`: building
    an sdist for its metadata runs the package's code."""
    python = next((r for r in records if r["name"] == "python"), None)
    if python is None:
        raise BinderConfigError(f"{spec.name}: a pip: section needs python among the "
                                "conda dependencies")
    if options := [line for line in spec.pip if line.startswith("-")]:
        raise BinderConfigError(f"{spec.name}: pip options are not supported in the pip: "
                                f"section ({options[0]}); list packages only")
    conda_versions = {}
    for record in records:
        with contextlib.suppress(InvalidVersion):
            Version(record["version"])  # only PEP 440 versions can constrain pip
            conda_versions[canonicalize_name(record["name"])] = record["version"]
    conda_versions.pop("python", None)
    text = "".join(f"{line}\n" for line in spec.pip)
    pins = Lock("".join(f"{name}=={v}\n" for name, v in sorted(conda_versions.items())))
    check_requirements(text, pins, f"{spec.name} pip:", "the conda environment")
    python_version = ".".join(python["version"].split(".")[:2])
    try:
        pylock = compile_in_sandbox(sandbox, {"pip-section.in": text.encode()},
                                    "pip-section.in", conda_versions, "pangeo-binder lock",
                                    python_version, pylock=True)
    except LockError as exc:
        raise LockError(f"cannot resolve the pip: section of {spec.name} with the "
                        f"conda environment: {exc}") from None
    packages = []
    for package in tomllib.loads(pylock).get("packages", []):
        if canonicalize_name(package["name"]) in conda_versions:
            continue  # installed by conda, at the version pip was held to
        file = (package.get("wheels") or [package["sdist"]])[0]
        packages.append(PipPackage(name=package["name"], version=package["version"],
                                   url=file["url"], sha256=file["hashes"]["sha256"]))
    return packages


def check_lock_sources(lock: CondaLock, channels: Mapping[str, str], name: str) -> None:
    """Refuse a shipped lock naming any package outside the allowed channels, before
    anything is fetched: the builder fetches conda packages itself, so a lock must not
    make it fetch anything else (cloud metadata, the builder's own services, files).
    Channel URLs are the operator's (plain http or file only when configured so); pip
    packages, fetched inside the image build, must come over https."""
    prefixes = [url.rstrip("/") + "/" for url in channels.values()]
    for package in lock.packages:
        if not any(package.url.startswith(prefix) for prefix in prefixes):
            raise BinderConfigError(
                f"{name}: {package.name} comes from {_origin(package.url)}, which is not "
                f"an allowed channel ({', '.join(channels)}); re-lock with those channels")
    for pip in lock.pip_packages:
        if not pip.url.startswith("https://"):
            raise BinderConfigError(f"{name}: pip package {pip.name} must come from an "
                                    f"https URL, not {_origin(pip.url)}")


def _origin(url: str) -> str:
    """Where a URL points, without its path or any credentials."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" if parts.scheme else repr(url[:40])


def resolve_conda_lock(checkout: Checkout, environment_file: str | None,
                       lock_file: str | None, settings: Settings, emit: Emit,
                       sandbox: Sandbox) -> CondaLock:
    """The repository's conda lock: its shipped conda-lock.yml as is (no solve, its
    packages only from the allowed channels), else its environment.yml solved with the
    Pangeo conda base."""
    if lock_file:
        emit(Event(Phase.BUILDING, f"Using the repository's lock {lock_file} (no solve)"))
        lock = read_lock(read_text(checkout, lock_file, LOCK_FILE_LIMIT), lock_file)
        check_lock_sources(lock, parse_channels(settings.conda_channels or DEFAULT_CHANNELS),
                           lock_file)
        return lock
    assert environment_file, "a conda build needs an environment.yml or a conda-lock.yml"
    spec = parse_environment(read_text(checkout, environment_file), environment_file)
    return lock_environment_yml(spec, settings, emit, sandbox)


def fetch_packages(lock: CondaLock, cache_dir: Path, emit: Emit) -> dict[str, Path]:
    """Every locked package, from its locked URL, checked against its sha256; kept in a
    cache addressed by that hash. Returns file name -> cached file."""
    import httpx  # loads ssl and http: only when fetching

    store = cache_dir / "conda-pkgs"
    files = {}
    for package in lock.packages:
        cached = store / package.sha256 / package.filename
        if not cached.is_file():
            emit(Event(Phase.BUILDING, f"Fetching {package.filename}", detail=True))
            # Fetched beside the store and moved in once its hash is right: a package
            # that fails leaves neither a file nor its hash's directory behind.
            store.mkdir(parents=True, exist_ok=True)
            # A name of this process's own: concurrent builds may fetch the same package.
            with tempfile.NamedTemporaryFile(dir=store, prefix=f"{package.sha256}.",
                                             suffix=".part", delete=False) as out:
                partial = Path(out.name)
            try:
                _download(package.url, partial, httpx)
            except (OSError, httpx.HTTPError) as exc:
                partial.unlink(missing_ok=True)
                raise LockError(f"cannot fetch {package.url}: {exc}") from None
            digest = hashlib.sha256(partial.read_bytes()).hexdigest()
            if digest != package.sha256:
                partial.unlink()
                raise LockError(f"{package.filename} from {package.url} has sha256 "
                                f"{digest}, not the locked {package.sha256}")
            cached.parent.mkdir(exist_ok=True)
            partial.chmod(0o644)  # readable in the build, like any fetched file
            os.replace(partial, cached)
        files[package.filename] = cached
    return files


def _download(url: str, to: Path, httpx) -> None:
    """`url`'s bytes into `to`: a channel on this machine (file://, as a local channel's
    locked URLs are) is copied, any other is fetched over HTTP(S)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        shutil.copyfile(urllib.request.url2pathname(parts.path), to)
        return
    with httpx.stream("GET", url, timeout=60, follow_redirects=True) as response, \
            to.open("wb") as out:
        if response.status_code != 200:  # httpx's own text of it is two lines
            raise OSError(f"the server answered {response.status_code} "
                          f"{response.reason_phrase}")
        for chunk in response.iter_bytes():
            out.write(chunk)


def install_manifest(lock: CondaLock) -> str:
    """What the image's installer reads: file, sha256, md5 and URL of each package (in
    name order, so a lock read back from its file gives the same manifest)."""
    return json.dumps([{"file": p.filename, "sha256": p.sha256, "md5": p.md5, "url": p.url}
                       for p in sorted(lock.packages, key=lambda p: p.name)],
                      indent=1) + "\n"


def pip_requirements(lock: CondaLock) -> str:
    """The pip packages as a hash-checked requirements file (empty without any)."""
    return "".join(f"{p.name} @ {p.url} --hash=sha256:{p.sha256}\n"
                   for p in sorted(lock.pip_packages, key=lambda p: p.name))


def installed_list(lock: CondaLock) -> str:
    """The conda-meta entries the environment must have, exactly: the smoke test's list."""
    return "".join(f"{key}\n" for key in sorted(p.key for p in lock.packages))
