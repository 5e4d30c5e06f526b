"""A local conda channel made of small real conda packages, for tests and benchmarks.

conda-forge is not reachable here, so the conda path runs against packages built by
`make_package` (real .tar.bz2 conda packages: info/index.json, info/paths.json,
info/files and a payload) in a channel indexed by py-rattler.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

TIMESTAMP = 1767225600  # 2026-01-01: fixed, so the same package is the same bytes


def make_package(channel: Path, name: str, version: str, depends: Sequence[str] = (),
                 subdir: str = "noarch", files: Mapping[str, str] | None = None,
                 links: Mapping[str, str] | None = None) -> Path:
    """Write the package `name`-`version` into `channel`/`subdir`, with `files` (path ->
    text) and symbolic `links` (path -> target); return its path."""
    files = files or {f"share/{name}/VERSION": f"{name} {version}\n"}
    build = "h" + hashlib.sha256(f"{name} {version} {list(depends)}".encode()).hexdigest()[:7]
    build += "_0"
    index: dict[str, object] = {
        "name": name, "version": version, "build": build, "build_number": 0,
        "depends": list(depends), "subdir": subdir, "license": "BSD-3-Clause",
        "timestamp": TIMESTAMP * 1000,
    }
    if subdir == "noarch":
        index["noarch"] = "generic"
    else:
        index.update(arch="x86_64", platform=subdir.split("-")[0])
    paths = []
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:bz2") as tar:
        def add(path: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), mode, TIMESTAMP
            tar.addfile(info, io.BytesIO(data))

        for path, text in files.items():
            data = text.encode()
            add(path, data, 0o755 if path.startswith("bin/") else 0o644)
            paths.append({"_path": path, "path_type": "hardlink", "size_in_bytes": len(data),
                          "sha256": hashlib.sha256(data).hexdigest()})
        for path, target in (links or {}).items():
            info = tarfile.TarInfo(path)
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, target, TIMESTAMP
            tar.addfile(info)
            paths.append({"_path": path, "path_type": "softlink", "size_in_bytes": 0,
                          "sha256": hashlib.sha256(target.encode()).hexdigest()})
        add("info/index.json", json.dumps(index).encode())
        add("info/paths.json", json.dumps({"paths": paths, "paths_version": 1}).encode())
        add("info/files", "".join(f"{path}\n" for path in [*files, *(links or {})]).encode())
    target = channel / subdir / f"{name}-{version}-{build}.tar.bz2"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(archive.getvalue())
    return target


def index_channel(channel: Path) -> None:
    """Write the channel's repodata with py-rattler's indexer (in a child process that
    skips interpreter teardown, as pangeo_binder.builder.conda_solver does)."""
    for subdir in ("noarch", "linux-64"):
        (channel / subdir).mkdir(parents=True, exist_ok=True)
    script = ("import asyncio, os, sys\nfrom rattler.index import index_fs\n"
              "asyncio.run(index_fs(sys.argv[1]))\nos._exit(0)\n")
    subprocess.run([sys.executable, "-c", script, str(channel)], check=True)


def make_test_channel(channel: Path) -> Path:
    """The channel the conda tests use:

    - numcore 1.0, 1.1, 2.0: the "core" the test base pins (numcore ==1.1);
    - libtool-a 1.0 (linux-64), needing numcore >=1;
    - hello 1.0, needing libtool-a, with a `hello` program;
    - xtool 2.0, needing numcore >=2 (which the core pin forbids);
    - osxonly 1.0, only for osx-arm64;
    - python 3.11.2: a stand-in for conda-forge's Python (none is reachable here) that
      makes the environment a venv over the image's own Python 3.11, so a pip: section
      has an interpreter to install into.
    """
    for version in ("1.0", "1.1", "2.0"):
        make_package(channel, "numcore", version)
    make_package(channel, "libtool-a", "1.0", ["numcore >=1"], subdir="linux-64")
    make_package(channel, "hello", "1.0", ["libtool-a"],
                 files={"bin/hello": "#!/bin/sh\necho hello from a conda package\n"})
    make_package(channel, "xtool", "2.0", ["numcore >=2"])
    make_package(channel, "osxonly", "1.0", subdir="osx-arm64")
    make_package(channel, "python", "3.11.2", subdir="linux-64", files={
        "pyvenv.cfg": "home = /usr/bin\ninclude-system-site-packages = false\n"
                      "version = 3.11.2\n",
        "lib/python3.11/site-packages/stand-in-python.txt": "a venv over /usr/bin/python3\n",
    }, links={"bin/python": "/usr/bin/python3", "bin/python3": "python"})
    index_channel(channel)
    return channel


TEST_BASE = """\
# The test stand-in for the Pangeo conda base: one pinned core package.
channels:
  - conda-forge
dependencies:
  - numcore ==1.1
"""


def conda_settings(channel: Path, base: Path) -> dict[str, str]:
    """Environment variables pointing pangeo-binder at the test channel and base."""
    if not base.exists():
        base.write_text(TEST_BASE)
    return {"PANGEO_BINDER_CONDA_CHANNELS": f"conda-forge={channel.as_uri()}",
            "PANGEO_BINDER_CONDA_BASE": str(base)}
