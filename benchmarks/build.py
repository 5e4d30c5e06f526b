"""Build benchmarks: pangeo-binder against the naive way, measured in one run.

    python benchmarks/build.py        (after scripts/setup-docker and scripts/setup-venv)

The naive way is what a maintainer writes without pangeo-binder: one single-stage
Dockerfile on the same OS + Python image that `pip install`s the same packages (the Pangeo
stack's top-level specs plus the repository's extras) and copies the repository.

(a) warm build of a repository that adds three packages: pangeo-binder with its base
    images built, the naive Dockerfile with Docker's layer cache (its pip layer is new,
    because the package list changed); where pangeo-binder's time goes (resolve, docker
    build, smoke test, tag) is read from its progress lines as they arrive;
(b) no-op rebuild: pangeo-binder's cache hit against a fully cached `docker build`, run
    in turn, each the median of 21;
(c) lock time: resolving the extras against the base pins (uv), against pip resolving the
    same full list (`pip install --dry-run`), both with empty caches;
(d) image size, and what one more repository adds on disk (layers not shared with others);
(e) the Pangeo base image's size and its 15 largest packages (files and bytecode).

Each figure is also compared with the one docs/performance.md's table holds (the
previous run).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from recorded_figures import change, markdown, previous
from rich.console import Console
from rich.table import Table

import pangeo_binder as pangeo_binder_package
from pangeo_binder.builder.lock import load_base_lock
from pangeo_binder.builder.plan import environment_image_plan, python_image_plan
from pangeo_binder.engine import Engine
from pangeo_binder.resources import environment_dir
from pangeo_binder.settings import Settings

EXTRAS = ["xarray-einstats", "xhistogram", "properscoring"]
TABLE = "build benchmark"  # the first header cell of its table in docs/performance.md
PREFIX = "pangeo-binder-bench/"
NAIVE_IMAGE = "pangeo-binder-bench/naive:latest"


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(*command: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd,
                            env={**os.environ, **(env or {})}, check=False)
    if result.returncode != 0:
        sys.exit(f"benchmark step failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return result.stdout.strip()


def pangeo_binder(*args: str, env: dict[str, str] | None = None) -> str:
    return run(sys.executable, "-m", "pangeo_binder", *args, env=env)


def top_level_specs() -> list[str]:
    lines = (environment_dir() / "requirements.in").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def naive_dockerfile(python_image: str) -> str:
    return (
        f"FROM {python_image}\n"
        "COPY --chown=1000:1000 requirements.txt /tmp/requirements.txt\n"
        "RUN --mount=type=secret,id=ca,uid=1000 /srv/pangeo-binder/with-ca sh -c '"
        "python3 -m venv /srv/venv && /srv/venv/bin/pip install --quiet --no-cache-dir "
        "-r /tmp/requirements.txt'\n"
        "COPY --chown=1000:1000 . /home/jovyan/\n"
    )


def image_size(engine: Engine, ref: str) -> int:
    return engine.client.images.get(ref).attrs["Size"]


def paired_medians(first: Callable[[], object], second: Callable[[], object],
                   pairs: int = 21) -> tuple[float, float]:
    """The median times of `first` and `second`, run in turn (first, second, first, ...)
    so that a drift of the machine's speed falls on both alike; one warm-up each."""
    first(), second()
    times = [(timed(first), timed(second)) for _ in range(pairs)]
    return (sorted(a for a, _ in times)[pairs // 2], sorted(b for _, b in times)[pairs // 2])


# The phase each progress line starts (a cache of the lock skips "resolve").
PHASES = {"Resolving": "resolve", "Using the cached lock": "resolve", "Building ": "build",
          "Smoke-testing": "smoke test", "Tagging": "tag", "Built ": "exit"}


def phased_build(repo: Path, env: dict[str, str]) -> tuple[float, dict[str, float]]:
    """Build `repo` through the CLI; return its wall time and the seconds of each phase,
    timed by the progress line that starts it."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "pangeo_binder", "build", str(repo)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **env})
    marks: list[tuple[str, float]] = [("start", 0.0)]
    assert process.stderr is not None
    for line in process.stderr:
        message = line.strip().partition(" ")[2]
        phase = next((p for prefix, p in PHASES.items() if message.startswith(prefix)), None)
        if phase and phase != marks[-1][0]:
            marks.append((phase, time.perf_counter() - started))
    if process.wait() != 0:
        sys.exit("benchmark step failed: the warm build")
    total = time.perf_counter() - started
    marks.append(("end", total))
    phases = {"start-up": marks[1][1]} if len(marks) > 2 else {}
    for (phase, at), (_, until) in itertools.pairwise(marks[1:]):
        phases[phase] = phases.get(phase, 0.0) + until - at
    return total, phases


LARGEST_PACKAGES = """
import importlib.metadata as m, os
sizes = {}
for dist in m.distributions():
    total = 0
    for file in dist.files or ():
        path = file.locate()
        if os.path.isfile(path):
            total += os.path.getsize(path)
        if str(file).endswith(".py"):  # its bytecode, which no RECORD lists
            cached = os.path.join(os.path.dirname(path), "__pycache__",
                                  os.path.basename(path)[:-3] + ".cpython-311.pyc")
            if os.path.isfile(cached):
                total += os.path.getsize(cached)
    sizes[dist.metadata["Name"]] = total
for name, size in sorted(sizes.items(), key=lambda item: -item[1])[:15]:
    print(name, size)
"""


def largest_packages(engine: Engine, image: str) -> list[tuple[str, int]]:
    result = engine.run(image, ["python", "-c", LARGEST_PACKAGES])
    if result.exit_code != 0:
        sys.exit(f"benchmark step failed: listing the base's packages\n{result.output}")
    return [(name, int(size)) for name, size in
            (line.rsplit(" ", 1) for line in result.output.splitlines() if line.strip())]


def main() -> None:
    settings = Settings.from_env()
    engine = Engine(settings.docker_cli)
    engine.check()
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="pangeo-binder-bench-"))
    scratch_cache = work / "cache"
    env = {"PANGEO_BINDER_IMAGE_PREFIX": PREFIX, "PANGEO_BINDER_CACHE_DIR": str(scratch_cache)}
    try:
        repo = work / "repo"
        (repo / "binder").mkdir(parents=True)
        (repo / "binder" / "requirements.txt").write_text("\n".join(EXTRAS) + "\n")
        (repo / "analysis.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, '
                                             '"nbformat_minor": 5}')

        console.print("warming the base images (not measured)...")
        # pangeo-binder's own bytecode, as an installed package has it (an editable
        # checkout may hold stale .pyc files, which every start would compile again).
        run(sys.executable, "-m", "compileall", "-q", str(Path(pangeo_binder_package.__file__)
                                                          .parent))
        pangeo_binder("build", str(examples_quickstart()), env=env)

        # (c) lock time, empty caches on both sides.
        lock_seconds = timed(lambda: pangeo_binder(
            "lock", str(repo), env={**env, "UV_CACHE_DIR": str(work / "uv-cache")}))
        shutil.rmtree(scratch_cache, ignore_errors=True)
        full_list = work / "full-requirements.txt"
        full_list.write_text("\n".join(top_level_specs() + EXTRAS) + "\n")
        pip_seconds = timed(lambda: run(
            sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
            "--no-cache-dir", "--python-version", "3.11", "--only-binary=:all:",
            "--target", str(work / "pip-target"), "-r", str(full_list)))

        # (a) warm build of a repository adding three packages. Warm: the base images are
        # built, uv's package cache (a cache mount) is full. BuildKit's layer cache is
        # emptied first, on both sides, so that an earlier run's identical layers are
        # not taken for this run's work.
        run(settings.docker_cli, "builder", "prune", "--all", "--force",
            "--filter", "type=regular")
        build_seconds, phases = phased_build(repo, env)
        image = pangeo_binder("build", str(repo), env=env)

        python = python_image_plan(settings.os_image, engine.image_id(settings.os_image) or "")
        python_image = python.image
        naive = work / "naive"
        shutil.copytree(repo, naive)
        (naive / "requirements.txt").write_text(full_list.read_text())
        (naive / "Dockerfile").write_text(naive_dockerfile(python_image))
        naive_build = [settings.docker_cli, "build", "--quiet", "--tag", NAIVE_IMAGE]
        if settings.ca_bundle:
            naive_build += ["--secret", f"id=ca,src={settings.ca_bundle}"]
        naive_build.append(str(naive))
        run(settings.docker_cli, "builder", "prune", "--all", "--force",
            "--filter", "type=regular")
        naive_seconds = timed(lambda: run(*naive_build, env={"DOCKER_BUILDKIT": "1"}))

        # (b) no-op rebuilds: the CLI as a user runs it, against a cached `docker build`.
        noop_seconds, naive_noop_seconds = paired_medians(
            lambda: run(sys.executable, "-m", "pangeo_binder", "build", str(repo), env=env),
            lambda: run(*naive_build, env={"DOCKER_BUILDKIT": "1"}))

        # (d) sizes; (e) the base.
        base_image = environment_image_plan(python).image
        size = image_size(engine, image)
        naive_size = image_size(engine, NAIVE_IMAGE)
        increment = size - image_size(engine, base_image)
        base_size = image_size(engine, base_image)
        packages = largest_packages(engine, base_image)

        before = previous(TABLE)
        header = [TABLE, "pangeo-binder", "naive", "naive / pangeo-binder", "recorded",
                  "change"]
        table = Table(title="pangeo-binder vs the naive way (one run, this machine)")
        for column in header:
            table.add_column(column, justify="left" if column == TABLE else "right")
        rows = [
            ("(a) warm build, repo adds 3 packages", build_seconds, naive_seconds, "s"),
            ("(b) no-op rebuild", noop_seconds, naive_noop_seconds, "s"),
            ("(c) lock (empty caches)", lock_seconds, pip_seconds, "s"),
            ("(d) image size", size / 1e9, naive_size / 1e9, "GB"),
            ("(d) disk added by one more repo", increment / 1e6, naive_size / 1e6, "MB"),
            ("(e) Pangeo base image", base_size / 1e9, None, "GB"),
        ]
        cells = []
        for name, ours, theirs, unit in rows:
            cells.append([
                name, f"{ours:.2f} {unit}", "-" if theirs is None else f"{theirs:.2f} {unit}",
                f"{theirs / ours:.1f}x" if ours and theirs else "-",
                f"{before[name]:.2f} {unit}" if name in before else "-",
                change(ours, before.get(name))])
            table.add_row(*cells[-1])
        console.print(table)
        console.print("(a) where the time went: " + ", ".join(
            f"{phase} {seconds:.2f} s" for phase, seconds in phases.items()))
        console.print(f"base lock: {len(load_base_lock().pins)} packages; extras: "
                      f"{', '.join(EXTRAS)}; image {image}")
        console.print("(e) the base's 15 largest packages: " + ", ".join(
            f"{name} {size / 1e6:.0f} MB" for name, size in packages))
        console.print("\nFor docs/performance.md:\n" + markdown(header[:4], [c[:4] for c in cells]))
    finally:
        for ref in [NAIVE_IMAGE] + [t for i in engine.client.images.list() for t in i.tags
                                    if t.startswith(PREFIX)]:
            engine.remove(ref)
        shutil.rmtree(work, ignore_errors=True)


def examples_quickstart() -> Path:
    return Path(__file__).resolve().parent.parent / "examples" / "quickstart"


if __name__ == "__main__":
    main()
