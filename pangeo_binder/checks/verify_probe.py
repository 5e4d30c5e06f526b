"""What an image's environment holds, taken inside the image for `pangeo-binder verify`.

The image is the thing under suspicion, so nothing of it is trusted that a build step
could have changed: this file is sent as `python3 -I -S -c SOURCE` to the OS image's
interpreter (root-owned, below every postBuild), which then loads no site-packages,
.pth file or sitecustomize of the image, and reads the environment as plain files.
Standard library only; Python 3.9 and later.

It prints one JSON object: the lock files the image carries (their text), and for each
environment (the pip venv, a conda prefix) every distribution it finds, with the result
of checking its files against their recorded sha256 (a wheel's RECORD; conda-meta's
paths_data). Only a few paths per package are listed: the report names them, the count
says the rest. The comparison with the locks happens outside the image.
"""

import base64
import csv
import glob
import hashlib
import json
import os
import sys

LOCK_DIR = "/srv/pangeo-binder"
# Every pip lock (*.lock: the environment's, a repository's extras), the git requirements
# of a repository, and a conda environment's lock.
LOCK_FILES = ("*.lock", "repo-vcs.txt", "conda-lock.yml")
PIP_PREFIX = "/srv/venv"
CONDA_PREFIX = "/srv/conda"
SHOWN = 5  # changed or missing paths listed per distribution


def digest(path, algorithm="sha256"):
    """The file's digest, or None when it cannot be read as a regular file."""
    if os.path.islink(path) or not os.path.isfile(path):
        return None
    hasher = hashlib.new(algorithm)
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(block)
    except OSError:
        return None
    return hasher


class FileCheck:
    """Recorded files against what is on disk."""

    def __init__(self):
        self.checked = 0
        self.changed = []
        self.missing = []
        self.changed_count = 0
        self.missing_count = 0

    def compare(self, shown, path, expected, actual):
        self.checked += 1
        if not os.path.lexists(path):
            self.missing_count += 1
            if len(self.missing) < SHOWN:
                self.missing.append(shown)
        elif actual != expected:
            self.changed_count += 1
            if len(self.changed) < SHOWN:
                self.changed.append(shown)

    def result(self):
        return {"checked": self.checked, "changed": self.changed,
                "missing": self.missing, "changed_count": self.changed_count,
                "missing_count": self.missing_count}


def metadata(path):
    """Name and Version from a METADATA or PKG-INFO file's headers."""
    found = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                if key in ("Name", "Version") and key not in found:
                    found[key] = value.strip()
    except OSError:
        pass
    return found.get("Name"), found.get("Version")


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def top_level(site, path):
    """The entry of `site` that `path` is in (None outside it)."""
    relative = os.path.relpath(path, site)
    return None if relative.startswith("..") else relative.split(os.sep, 1)[0]


def record_check(site, dist_info, owned):
    """A wheel's RECORD against the files: rows without a hash (RECORD itself, files
    written later) are not checked. Adds the top-level entries it installed to `owned`."""
    check = FileCheck()
    try:
        with open(os.path.join(dist_info, "RECORD"), encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError:
        return None
    for row in rows:
        if row:
            owned.add(top_level(site, os.path.normpath(os.path.join(site, row[0]))))
        if len(row) < 2 or "=" not in row[1]:
            continue
        algorithm, _, expected = row[1].partition("=")
        if algorithm not in hashlib.algorithms_available:
            continue
        path = os.path.normpath(os.path.join(site, row[0]))
        hasher = digest(path, algorithm)
        actual = (base64.urlsafe_b64encode(hasher.digest()).rstrip(b"=").decode()
                  if hasher is not None else None)
        check.compare(row[0], path, expected, actual)
    return check.result()


def python_distributions(prefix, conda_files=()):
    """Every distribution of the prefix's site-packages, and the entries at its top that
    no package installed (files a build step or a session put there by hand: a .pth file
    there runs at every Python start), with their sha256."""
    dists = []
    unowned = []
    for site in sorted(glob.glob(os.path.join(prefix, "lib", "python3*", "site-packages"))):
        by_conda = {top_level(site, os.path.join(prefix, f)) for f in conda_files}
        owned = set(by_conda)
        entries = sorted(os.listdir(site))
        for entry in entries:
            path = os.path.join(site, entry)
            if entry.endswith(".dist-info"):
                name, version = metadata(os.path.join(path, "METADATA"))
                files = record_check(site, path, owned)
            elif entry.endswith(".egg-info"):
                info = os.path.join(path, "PKG-INFO") if os.path.isdir(path) else path
                name, version = metadata(info)
                files = None
            else:
                continue
            owned.add(entry)
            direct = read(os.path.join(path, "direct_url.json"))
            try:
                direct_url = json.loads(direct) if direct else None
            except ValueError:
                direct_url = None
            dists.append({
                "name": name or entry.split("-", 1)[0], "version": version or "",
                "path": path, "installer": (read(os.path.join(path, "INSTALLER")) or "").strip(),
                "direct_url": direct_url, "files": files,
                "conda": entry in by_conda,
            })
        for entry in entries:
            path = os.path.join(site, entry)
            if entry not in owned and entry != "__pycache__":
                hasher = digest(path)
                unowned.append({"path": path, "name": entry,
                                "sha256": hasher.hexdigest() if hasher is not None else ""})
    return dists, unowned


def conda_packages(prefix):
    packages = []
    owned = set()
    for meta in sorted(glob.glob(os.path.join(prefix, "conda-meta", "*.json"))):
        try:
            with open(meta, encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            record = {}
        check = FileCheck()
        entries = (record.get("paths_data") or {}).get("paths") or []
        for entry in entries:
            relative = entry.get("_path") or entry.get("relative_path")
            if not relative:
                continue
            path = os.path.join(prefix, relative)
            if entry.get("path_type") in ("softlink", "directory"):
                if not os.path.lexists(path):
                    check.compare(relative, path, "", None)
                continue
            # A file with the prefix written into it at link time differs from the
            # package's: only its in-prefix hash, where recorded, says what it must be.
            expected = entry.get("sha256_in_prefix") or (
                None if entry.get("prefix_placeholder") else entry.get("sha256"))
            if not expected:
                continue
            hasher = digest(path)
            check.compare(relative, path, expected,
                          hasher.hexdigest() if hasher is not None else None)
        owned.update(record.get("files") or [])
        packages.append({
            "file": os.path.basename(meta), "name": record.get("name", ""),
            "version": record.get("version", ""), "build": record.get("build", ""),
            "sha256": record.get("sha256") or "", "md5": record.get("md5") or "",
            "url": record.get("url") or "", "files": check.result(),
        })
    return packages, owned


def main(args):
    """Optional arguments: another lock directory, venv and conda prefix (for tests)."""
    lock_dir, pip_prefix, conda_prefix = (list(args) + [LOCK_DIR, PIP_PREFIX, CONDA_PREFIX][
        len(args):])[:3]
    locks = {}
    for pattern in LOCK_FILES:
        for path in sorted(glob.glob(os.path.join(lock_dir, pattern))):
            text = read(path)
            if text is not None:
                locks[os.path.basename(path)] = text
    environments = []
    if os.path.isfile(os.path.join(pip_prefix, "pyvenv.cfg")):
        dists, unowned = python_distributions(pip_prefix)
        environments.append({"kind": "pip", "prefix": pip_prefix, "python": dists,
                             "unowned": unowned})
    if os.path.isdir(os.path.join(conda_prefix, "conda-meta")):
        packages, files = conda_packages(conda_prefix)
        dists, unowned = python_distributions(conda_prefix, files)
        environments.append({"kind": "conda", "prefix": conda_prefix, "conda": packages,
                             "python": dists, "unowned": unowned})
    json.dump({"locks": locks, "environments": environments}, sys.stdout)
    sys.stdout.write("\n")


main(sys.argv[1:])
