"""Fresh build node benchmark: its first build, bases pulled from the registry against
bases rebuilt there, measured in one run.

    python benchmarks/fresh_engine.py   (as root, after scripts/setup-docker,
                                         scripts/setup-registry and scripts/setup-venv)

A fresh node (a BinderHub build pod on a new node, or its dind builder) is a second
dockerd with its own data root and socket (scripts/second-engine), reached only through
DOCKER_HOST, holding nothing but the OS image. The repository has no extras, so its own
image is the Pangeo base plus a COPY: the time is the bases'.

(a) naive, today without a registry for bases: the first build builds the OS + Python
    image and the Pangeo environment (239 packages from PyPI) on that engine;
(b) pangeo-binder with the bases in the registry (pushed by an earlier build that
    could push, not measured): the first build pulls the Pangeo base under its content
    tag and builds only the repository's layer.
Each starts from a new, empty engine. The registry is on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker
from rich.console import Console
from rich.table import Table

from pangeo_binder.builder.lock import load_base_lock
from pangeo_binder.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "pangeo-binder-bench/"
NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def run(*command: str | Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, check=False)
    if result.returncode != 0:
        sys.exit(f"benchmark step failed: {' '.join(map(str, command))}\n"
                 f"{result.stderr[-3000:]}")
    return result.stdout.strip()


def pangeo_binder(*args: str, env: dict[str, str] | None = None) -> str:
    return run(sys.executable, "-m", "pangeo_binder", *args, env=env)


def repository(work: Path, name: str) -> Path:
    repo = work / name
    repo.mkdir()
    (repo / "analysis.ipynb").write_text(NOTEBOOK)
    (repo / "id").write_text(uuid.uuid4().hex)  # a new image on every run
    return repo


def timed_build(repo: Path, args: tuple[str, ...], env: dict[str, str]) -> tuple[float, float, str]:
    """Seconds of `pangeo-binder build` to the built image, the seconds of it spent on
    the bases (from the first line about a base to the line after the last), and the
    image, from the JSON events as they arrive."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "pangeo_binder", "build", str(repo),
                                *args, "--json-logs"], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, **env})
    assert process.stdout is not None
    events = []
    for line in process.stdout:
        events.append((time.perf_counter() - started, json.loads(line)))
    seconds = time.perf_counter() - started
    if process.wait() != 0 or events[-1][1]["phase"] != "built":
        sys.exit(f"benchmark build failed: {events[-1][1]['message'] if events else ''}")
    about_bases = [i for i, (_, event) in enumerate(events)
                   if "base image" in event["message"]
                   or " pangeo-binder/python:" in event["message"]
                   or " pangeo-binder/pangeo-notebook:" in event["message"]]
    bases = events[about_bases[-1] + 1][0] - events[about_bases[0]][0]
    return seconds, bases, events[-1][1]["message"].split()[-1]


def first_build(work: Path, name: str, os_image: str,
                *args: str) -> tuple[float, float, str, int]:
    """Seconds of the first build of a new repository on a new empty engine and of its
    bases part, its image, and the bytes of images that engine ends with."""
    engine_dir = Path(tempfile.mkdtemp(prefix="pb-bench-", dir="/tmp"))
    script = ROOT / "scripts" / "second-engine"
    try:
        docker_host = run(script, "up", engine_dir, "--network").removeprefix(
            "export DOCKER_HOST=")
        fresh = docker.DockerClient(base_url=docker_host, timeout=600)
        fresh.images.load(docker.from_env().images.get(os_image).save(named=os_image))
        seconds, bases, image = timed_build(
            repository(work, name), args,
            {"DOCKER_HOST": docker_host, "PANGEO_BINDER_CACHE_DIR": str(work / f"cache-{name}")})
        stored = fresh.df()["LayersSize"]
        fresh.close()
        return seconds, bases, image, stored
    finally:
        subprocess.run([str(script), "down", str(engine_dir)], check=False)


def main() -> None:
    settings = Settings.from_env()
    registry = os.environ.get("PANGEO_BINDER_TEST_REGISTRY") or "localhost:5000"
    prefix = f"{registry}/{PREFIX}"
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="pangeo-binder-bench-"))
    try:
        console.print(f"putting the bases in {registry} (not measured)...")
        pangeo_binder("build", str(repository(work, "warm")), "--push", "--image-prefix",
                      prefix)

        console.print("(b) first build on a fresh engine, bases from the registry...")
        pulled, pull, image, pulled_size = first_build(work, "pulled", settings.os_image,
                                                       "--image-prefix", prefix)
        console.print("(a) first build on a fresh engine, bases built there...")
        built, build, naive_image, built_size = first_build(
            work, "rebuilt", settings.os_image, "--image-prefix", PREFIX)

        table = Table(title="first build on a fresh engine (one run, this machine)")
        for column in ("measure", "bases from the registry", "bases rebuilt",
                       "rebuilt / registry"):
            table.add_column(column, justify="right" if column != "measure" else "left")
        table.add_row("time to the built image", f"{pulled:.1f} s", f"{built:.1f} s",
                      f"{built / pulled:.1f}x")
        table.add_row("... of which the bases", f"{pull:.1f} s (pull)",
                      f"{build:.1f} s (build)", f"{build / pull:.1f}x")
        table.add_row("images on the engine after", f"{pulled_size / 1e9:.2f} GB",
                      f"{built_size / 1e9:.2f} GB", "-")
        console.print(table)
        console.print(f"base lock: {len(load_base_lock().pins)} packages; "
                      f"images {image}, {naive_image}; load average "
                      f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        client = docker.from_env()
        for tag in [t for i in client.images.list() for t in i.tags if PREFIX in t]:
            client.images.remove(tag)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
