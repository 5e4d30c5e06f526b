"""`pangeo-binder verify IMAGE`: does an image still hold exactly what its lock says?

The smoke test compares versions once, when the image is built. An image drifts later
too: a session is `docker commit`ed after a `pip install`, a file is edited in place, a
hub's appendix or a postBuild adds what no lock names. So `verify` takes the inventory
of any image again (`verify_probe.py`, run with the OS image's Python, as uid 1000,
without network, on a read-only file system, in a container removed afterwards) and
compares it with the locks the image carries: every package added, removed, at another
version, or with files that differ from their recorded sha256.

The comparison is pure (`compare_python`, `compare_conda`) so that it is tested without
Docker; `inspect_image` is the only part that asks the engine.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..engine import Engine
from ..errors import PangeoBinderError

PROBE = Path(__file__).with_name("verify_probe.py")
# The OS image's interpreter: root-owned, below every layer a repository writes.
PROBE_PYTHON = "/usr/bin/python3"
PROBE_TIMEOUT = 900  # seconds: hashing a 2 GB environment takes well under a minute
# How the probe runs: the image's entrypoint (its start script) skipped, as the notebook
# user, without network (Engine.run), unable to write anything.
PROBE_RUN = {"entrypoint": [PROBE_PYTHON], "user": "1000:1000", "read_only": True}
REPOSITORY_DIR = "/home/jovyan"  # where a repository's own packages are installed from
SHOWN = 5  # paths named per package
PROVENANCE_PREFIXES = ("org.opencontainers.image.", "pangeo-binder.")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
_VCS = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*@\s*\S+?@([0-9a-f]{7,40})\s*$")


class VerifyError(PangeoBinderError):
    """The image cannot be verified: it is not here, it is not an image pangeo-binder
    built from a lock, or its inventory could not be taken."""


class Change(StrEnum):
    ADDED = "added"  # installed, in no lock
    REMOVED = "removed"  # locked, not installed
    VERSION = "version"  # installed at another version (or conda build, or git commit)
    FILES = "files"  # the locked version, with files unlike their recorded sha256
    UNOWNED = "unowned"  # in site-packages, installed by no package (a .pth runs at start)


class Ecosystem(StrEnum):
    PYPI = "pypi"
    CONDA = "conda"


@dataclass(frozen=True)
class FileCheck:
    """A package's recorded files against the files on disk: the first few that
    differ or are missing, and how many."""

    checked: int = 0
    changed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    changed_count: int = 0
    missing_count: int = 0

    @property
    def clean(self) -> bool:
        return not (self.changed_count or self.missing_count)

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> FileCheck:
        if not data:
            return cls()
        return cls(checked=int(data.get("checked", 0)),
                   changed=tuple(data.get("changed", ()))[:SHOWN],
                   missing=tuple(data.get("missing", ()))[:SHOWN],
                   changed_count=int(data.get("changed_count", 0)),
                   missing_count=int(data.get("missing_count", 0)))

    def describe(self, against: str) -> str:
        parts = []
        for count, shown, what in ((self.changed_count, self.changed, f"differ from {against}"),
                                   (self.missing_count, self.missing, "are missing")):
            if count:
                more = f" and {count - len(shown)} more" if count > len(shown) else ""
                noun = "file" if count == 1 else "files"
                verb = what.replace("differ", "differs").replace("are", "is") \
                    if count == 1 else what
                parts.append(f"{count} {noun} {verb}: {', '.join(shown)}{more}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Pin:
    """What a lock says of one package."""

    version: str | None  # None: a git requirement, locked to `commit` instead
    hashes: tuple[str, ...] = ()  # sha256 of the files the lock allows
    commit: str | None = None
    build: str = ""  # conda


@dataclass(frozen=True)
class Distribution:
    """A Python distribution found in the environment (a .dist-info or .egg-info)."""

    name: str
    version: str
    installer: str = ""
    direct_url: Mapping[str, Any] | None = None
    files: FileCheck = field(default_factory=FileCheck)
    conda_owned: bool = False  # installed by a conda package, checked as that

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Distribution:
        return cls(name=data["name"], version=data.get("version", ""),
                   installer=data.get("installer", ""), direct_url=data.get("direct_url"),
                   files=FileCheck.of(data.get("files")),
                   conda_owned=bool(data.get("conda")))

    @property
    def from_repository(self) -> bool:
        """Installed from the repository's own directory (`-e .`, `.`): built from
        its source, so no lock pins it."""
        url = str((self.direct_url or {}).get("url", ""))
        return "dir_info" in (self.direct_url or {}) and (
            url == f"file://{REPOSITORY_DIR}" or url.startswith(f"file://{REPOSITORY_DIR}/"))

    @property
    def commit(self) -> str | None:
        return ((self.direct_url or {}).get("vcs_info") or {}).get("commit_id")


@dataclass(frozen=True)
class CondaRecord:
    """A package linked into a conda prefix (its conda-meta/*.json)."""

    name: str
    version: str
    build: str
    sha256: str = ""
    md5: str = ""
    url: str = ""
    files: FileCheck = field(default_factory=FileCheck)

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> CondaRecord:
        return cls(name=data["name"], version=data.get("version", ""),
                   build=data.get("build", ""), sha256=data.get("sha256", ""),
                   md5=data.get("md5", ""), url=data.get("url", ""),
                   files=FileCheck.of(data.get("files")))


@dataclass(frozen=True)
class Package:
    """An installed package, as the report and the SBOM list it."""

    name: str
    version: str
    ecosystem: Ecosystem
    build: str = ""
    sha256: str = ""  # of the package file: conda's record, or the lock's only hash
    md5: str = ""
    url: str = ""
    locked: bool = True  # False: added, or the repository's own package


@dataclass(frozen=True)
class Drift:
    """One package that is not as its lock says."""

    name: str
    ecosystem: Ecosystem
    change: Change
    locked: str | None  # the version the lock names (with its conda build)
    installed: str | None
    files: FileCheck = field(default_factory=FileCheck)
    against: str = ""  # what the files are compared with, if not the package's record

    def describe(self) -> str:
        against = self.against or ("its RECORD" if self.ecosystem is Ecosystem.PYPI
                                   else "its conda-meta record")
        if self.change is Change.UNOWNED:
            return f"{self.name}: in site-packages, but no package installed it"
        if self.change is Change.ADDED:
            return f"{self.name} {self.installed}: installed, but no lock names it"
        if self.change is Change.REMOVED:
            return f"{self.name} {self.locked}: locked, but not installed"
        if self.change is Change.VERSION:
            line = f"{self.name}: {self.installed} installed, the lock pins {self.locked}"
            return line + (f"; {self.files.describe(against)}" if not self.files.clean else "")
        installed = f" {self.installed}" if self.installed else ""
        return f"{self.name}{installed}: {self.files.describe(against)}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(change=str(self.change), ecosystem=str(self.ecosystem),
                    description=self.describe())
        return data


@dataclass(frozen=True)
class Verification:
    """What `verify` found in one image."""

    image: str
    image_id: str
    repo_digests: tuple[str, ...]
    labels: Mapping[str, str]
    kind: str  # "pip" or "conda"
    environment: str  # the venv or conda prefix that was looked at
    lock_files: tuple[str, ...]
    packages: tuple[Package, ...]
    files_checked: int
    drift: tuple[Drift, ...]

    @property
    def matches(self) -> bool:
        return not self.drift

    @property
    def provenance(self) -> dict[str, str]:
        return {key: value for key, value in sorted(self.labels.items())
                if key.startswith(PROVENANCE_PREFIXES)}

    @property
    def summary(self) -> str:
        counted = f"{len(self.packages)} packages, {self.files_checked} files checked"
        if self.matches:
            return f"{self.image} matches its lock: {counted}"
        kinds = {change: sum(d.change is change for d in self.drift) for change in Change}
        said = {Change.ADDED: "added", Change.REMOVED: "removed",
                Change.VERSION: "at another version", Change.FILES: "with changed files",
                Change.UNOWNED: "installed by no package"}
        parts = ", ".join(f"{n} {said[c]}" for c, n in kinds.items() if n)
        noun = "difference" if len(self.drift) == 1 else "differences"
        return (f"{self.image} has drifted from its lock: {len(self.drift)} {noun} "
                f"({parts}); {counted} in {self.environment}")

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "image_id": self.image_id, "matches": self.matches,
                "kind": self.kind, "environment": self.environment,
                "lock_files": list(self.lock_files), "packages": len(self.packages),
                "files_checked": self.files_checked, "provenance": self.provenance,
                "differences": [d.to_json() for d in self.drift], "summary": self.summary}


def same_version(a: str, b: str) -> bool:
    """Versions as PEP 440 compares them (2024.01.0 is 2024.1.0), else as text."""
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def pip_pins(locks: Mapping[str, str]) -> dict[str, Pin]:
    """The union of a pip image's locks (uv's `name==version \\ --hash=...` lines) and
    its git requirements (repo-vcs.txt), by PEP 503 name."""
    pins: dict[str, Pin] = {}
    for name, text in sorted(locks.items()):
        if name.endswith(".lock"):
            for line in _logical_lines(text):
                if match := _PIN.match(line):
                    pins[canonicalize_name(match[1])] = Pin(
                        version=match[2], hashes=tuple(_HASH.findall(line)))
        elif name == "repo-vcs.txt":
            for line in text.splitlines():
                if match := _VCS.match(line.strip()):
                    pins[canonicalize_name(match[1])] = Pin(version=None, commit=match[2])
    return pins


def _logical_lines(text: str) -> Iterable[str]:
    """Lines with their backslash continuations joined, comments dropped."""
    current = ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            yield current.strip()
        current = ""
    if current.strip():
        yield current.strip()


def compare_python(pins: Mapping[str, Pin], dists: Sequence[Distribution]
                   ) -> tuple[list[Drift], list[Package]]:
    """Python distributions against the pins: every difference, and the packages (for
    the SBOM). Distributions a conda package installed are left to `compare_conda`."""
    drift: list[Drift] = []
    packages: list[Package] = []
    seen: dict[str, list[Distribution]] = {}
    for dist in dists:
        if not dist.conda_owned:
            seen.setdefault(canonicalize_name(dist.name), []).append(dist)
    for name, found in sorted(seen.items()):
        pin = pins.get(name)
        installed = ", ".join(d.version for d in found)
        dist = found[0]
        files = _merged(d.files for d in found)
        if pin is None:
            own = all(d.from_repository for d in found)
            packages.append(Package(name, installed, Ecosystem.PYPI, locked=False))
            if not own:
                drift.append(Drift(name, Ecosystem.PYPI, Change.ADDED, None, installed, files))
            continue
        moved = len(found) > 1 or (pin.version is not None
                                   and not same_version(dist.version, pin.version))
        # The lock's hash is the installed file's when it allows only one, at its version.
        sha256 = pin.hashes[0] if len(pin.hashes) == 1 and not moved else ""
        packages.append(Package(name, installed, Ecosystem.PYPI, sha256=sha256))
        if moved:
            drift.append(Drift(name, Ecosystem.PYPI, Change.VERSION, pin.version, installed,
                               files))
        elif pin.commit is not None and not (dist.commit or "").startswith(pin.commit):
            drift.append(Drift(name, Ecosystem.PYPI, Change.VERSION, f"commit {pin.commit}",
                               f"commit {dist.commit or 'unknown'}", files))
        elif not files.clean:
            drift.append(Drift(name, Ecosystem.PYPI, Change.FILES, pin.version or installed,
                               installed, files))
    for name, pin in sorted(pins.items()):
        if name not in seen:
            drift.append(Drift(name, Ecosystem.PYPI, Change.REMOVED,
                               pin.version or f"commit {pin.commit}", None))
    return drift, packages


def _merged(checks: Iterable[FileCheck]) -> FileCheck:
    checks = list(checks)
    if len(checks) == 1:
        return checks[0]
    return FileCheck(checked=sum(c.checked for c in checks),
                     changed=tuple(p for c in checks for p in c.changed)[:SHOWN],
                     missing=tuple(p for c in checks for p in c.missing)[:SHOWN],
                     changed_count=sum(c.changed_count for c in checks),
                     missing_count=sum(c.missing_count for c in checks))


def compare_conda(pins: Mapping[str, Pin], records: Sequence[CondaRecord]
                  ) -> tuple[list[Drift], list[Package]]:
    """conda-meta against a conda lock: name, version, build and package sha256, and
    each linked file's sha256."""
    drift: list[Drift] = []
    packages: list[Package] = []
    found = {record.name: record for record in records}
    for name, record in sorted(found.items()):
        pin = pins.get(name)
        installed = f"{record.version} ({record.build})" if record.build else record.version
        packages.append(Package(name, record.version, Ecosystem.CONDA, build=record.build,
                                sha256=record.sha256, md5=record.md5, url=record.url,
                                locked=pin is not None))
        if pin is None:
            drift.append(Drift(name, Ecosystem.CONDA, Change.ADDED, None, installed,
                               record.files))
            continue
        locked = f"{pin.version} ({pin.build})" if pin.build else str(pin.version)
        other_file = bool(pin.hashes and record.sha256 and record.sha256 not in pin.hashes)
        if record.version != pin.version or (pin.build and record.build != pin.build) \
                or other_file:
            drift.append(Drift(name, Ecosystem.CONDA, Change.VERSION, locked,
                               installed + (" from another package file" if other_file
                                            and record.version == pin.version else ""),
                               record.files))
        elif not record.files.clean:
            drift.append(Drift(name, Ecosystem.CONDA, Change.FILES, locked, installed,
                               record.files))
    for name, pin in sorted(pins.items()):
        if name not in found:
            locked = f"{pin.version} ({pin.build})" if pin.build else str(pin.version)
            drift.append(Drift(name, Ecosystem.CONDA, Change.REMOVED, locked, None))
    return drift, packages


# The interpreter start-up hooks pangeo-binder copies into every environment's
# site-packages, pip and conda alike (base_images/pangeo-notebook and conda-notebook):
# Dask over TLS for the operator's client, and rfc3987-syntax's parsers built when used.
HOOK_FILES = ("pangeo_binder_dask_tls.py", "pangeo-binder-dask-tls.pth",
              "pangeo_binder_deferred_iri.py", "pangeo-binder-deferred-iri.pth")


def pangeo_binder_files() -> dict[str, str]:
    """pangeo-binder's own files in site-packages, as it ships them: name -> sha256."""
    from ..resources import base_images_dir

    directory = base_images_dir() / "pangeo-notebook"
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
            for name in HOOK_FILES}


def compare_unowned(entries: Sequence[Mapping[str, Any]],
                    ours: Mapping[str, str] | None = None) -> tuple[list[Drift], int]:
    """The top of site-packages beyond what packages installed: pangeo-binder's own
    files must be as it ships them; anything else is drift. Also returns how many files
    were compared."""
    ours = pangeo_binder_files() if ours is None else ours
    drift = []
    for entry in entries:
        name = entry["name"]
        if name not in ours:
            drift.append(Drift(name, Ecosystem.PYPI, Change.UNOWNED, None, None))
        elif entry.get("sha256") != ours[name]:
            drift.append(Drift(name, Ecosystem.PYPI, Change.FILES, "pangeo-binder's",
                               None, FileCheck(checked=1, changed=(name,), changed_count=1),
                               against="pangeo-binder's copy"))
    return drift, sum(entry["name"] in ours for entry in entries)


def conda_pins(lock_text: str) -> tuple[dict[str, Pin], dict[str, Pin]]:
    """A conda-lock.yml's linux-64 conda packages and its pip packages, as pins."""
    from ..builder.conda import read_lock

    lock = read_lock(lock_text, "the image's /srv/pangeo-binder/conda-lock.yml")
    conda = {p.name: Pin(version=p.version, build=p.build, hashes=(p.sha256,))
             for p in lock.packages}
    pip = {canonicalize_name(p.name): Pin(version=p.version, hashes=(p.sha256,))
           for p in lock.pip_packages}
    return conda, pip


def verify_inventory(image: str, image_id: str, labels: Mapping[str, str],
                     repo_digests: Sequence[str], inventory: Mapping[str, Any]) -> Verification:
    """The verdict on an image from the probe's inventory of it."""
    # The environment kinds say which of their locks mark an image, and where its
    # environment is installed.
    from ..builder.kinds import installed

    locks: Mapping[str, str] = inventory.get("locks") or {}
    environments = {env["kind"]: env for env in inventory.get("environments") or []}
    lock_files = tuple(sorted(locks))
    environment = installed(locks)
    if environment is None:
        raise VerifyError(f"{image} carries no pangeo-binder lock (/srv/pangeo-binder/*.lock "
                          "or conda-lock.yml): it is not an image pangeo-binder built from "
                          "a pinned environment, so there is nothing to verify it against")
    kind, prefix = environment.name, environment.prefix
    env = environments.get(kind, {})
    records = [Distribution.of(d) for d in env.get("python", ())]
    if kind == "conda":
        (lock_file,) = environment.lock_files
        conda, pip = conda_pins(locks[lock_file])
        drift, packages = compare_conda(conda, [CondaRecord.of(r) for r in env.get("conda", ())])
        more_drift, more = compare_python(pip, records)
        files = sum(r.files.checked for r in (CondaRecord.of(c) for c in env.get("conda", ())))
    else:
        drift, packages = compare_python(pip_pins(locks), records)
        more_drift, more, files = [], [], 0
    files += sum(d.files.checked for d in records if not d.conda_owned)
    unowned, known = compare_unowned(env.get("unowned", ()))
    files += known
    drift += unowned
    return Verification(
        image=image, image_id=image_id, repo_digests=tuple(repo_digests), labels=dict(labels),
        kind=kind, environment=env.get("prefix", prefix), lock_files=lock_files,
        packages=tuple(packages + more), files_checked=files,
        drift=tuple(drift + more_drift))


def inspect_image(image: str, engine: Engine) -> Verification:
    """Take the inventory of `image` (a local image) and compare it with its locks."""
    import docker.errors

    engine.check()
    image_id = engine.image_id(image)
    if image_id is None:
        raise VerifyError(f"no image {image} on this machine; `docker pull` it first")
    attrs = engine.client.images.get(image_id).attrs
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    try:
        result = engine.run(image_id, ["-I", "-S", "-c", PROBE.read_text(encoding="utf-8")],
                            timeout=PROBE_TIMEOUT, stderr=False, **PROBE_RUN)
    except docker.errors.APIError as exc:
        reason = " ".join(str(exc.explanation or exc).split())
        if "no such file" in reason.lower() or "not found" in reason.lower():
            raise VerifyError(f"{image} has no {PROBE_PYTHON}: it is not an image pangeo-binder "
                              "built, so there is no lock to verify it against") from None
        raise VerifyError(f"cannot look inside {image}: {reason}") from None
    try:
        inventory = json.loads(result.output.strip().splitlines()[-1])
    except (IndexError, ValueError):
        inventory = None
    if result.exit_code != 0 or not isinstance(inventory, dict):
        last = (result.output.strip().splitlines() or ["no output"])[-1][:200]
        raise VerifyError(f"cannot take the inventory of {image} (exit code "
                          f"{result.exit_code}): {last}")
    return verify_inventory(image, image_id, labels, attrs.get("RepoDigests") or (),
                            inventory)


def plain_lines(result: Verification) -> list[str]:
    """The differences, one line each (for logs and pipes)."""
    return [f"{d.change:>8}  {d.describe()}" for d in result.drift]


def rich_table(result: Verification):
    """The differences as a rich table (on a terminal)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{escape(result.image)}: {escape(result.environment)}")
    for column in ("package", "change", "lock", "installed", "files"):
        table.add_column(column)
    against = {Ecosystem.PYPI: "its RECORD", Ecosystem.CONDA: "its conda-meta record"}
    for d in result.drift:
        table.add_row(escape(d.name), str(d.change), escape(d.locked or "-"),
                      escape(d.installed or "-"),
                      escape(d.files.describe(against[d.ecosystem]) or "-"))
    return table
