"""Concurrent builds of one repository: N at once against one, measured in one run.

    python benchmarks/concurrent.py [N]      (after scripts/setup-docker; default N = 5)

What happens when N build pods (or N people) build the same commit at the same moment.
pangeo-binder builds the content once and the others wait and take its image. The naive
way, which is what pangeo-binder did before builds took a lock per content, is N
independent builds: timed here as N concurrent builds of N repositories that differ in
one notebook, so each of them has to build.

Rows: one build of a new repository; N concurrent builds of one new repository; N
concurrent independent builds. Each repository adds one package, so each build resolves
its lock, installs it and copies the repository; the base images are warmed first.
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

from rich.console import Console
from rich.table import Table

from pangeo_binder.engine import Engine
from pangeo_binder.settings import Settings

PREFIX = "pangeo-binder-bench-concurrent/"


def new_repository(root: Path) -> Path:
    """A repository no build has seen: its notebook holds a fresh id."""
    (root / "binder").mkdir(parents=True)
    (root / "binder" / "requirements.txt").write_text("xarray-einstats\n")
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {},
                           "source": [uuid.uuid4().hex]}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (root / "analysis.ipynb").write_text(json.dumps(notebook))
    return root


def builds(repositories: list[Path], env: dict[str, str]) -> tuple[float, list[str], int]:
    """Start one `pangeo-binder build` per repository at once; the wall time, the images
    printed, and how many of them ran a docker build."""
    started = time.perf_counter()
    running = [subprocess.Popen([sys.executable, "-m", "pangeo_binder", "build", str(repo)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **env}) for repo in repositories]
    outputs = [process.communicate() for process in running]
    seconds = time.perf_counter() - started
    for process, (_, stderr) in zip(running, outputs, strict=True):
        if process.returncode != 0:
            sys.exit(f"a build failed:\n{stderr[-2000:]}")
    images = [stdout.strip() for stdout, _ in outputs]
    built = sum(f"Building {image}" in stderr
                for image, (_, stderr) in zip(images, outputs, strict=True))
    return seconds, images, built


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    settings = Settings.from_env()
    engine = Engine(settings.docker_cli)
    engine.check()
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="pangeo-binder-bench-"))
    env = {"PANGEO_BINDER_IMAGE_PREFIX": PREFIX, "PANGEO_BINDER_CACHE_DIR": str(work / "cache")}
    try:
        console.print("warming the base images and the lock cache (not measured)...")
        builds([new_repository(work / "warm")], env)

        one, _, _ = builds([new_repository(work / "one")], env)
        together, images, built = builds([new_repository(work / "together")] * n, env)
        if len(set(images)) != 1:
            sys.exit(f"concurrent builds printed {len(set(images))} images")
        apart, _, apart_built = builds(
            [new_repository(work / f"apart-{i}") for i in range(n)], env)

        table = Table(title=f"{n} concurrent builds of one repository (one run, this machine)")
        for column in ("measure", "wall time", "docker builds", "against"):
            table.add_column(column, justify="left" if column == "measure" else "right")
        table.add_row("one build", f"{one:.1f} s", "1", "")
        table.add_row(f"{n} at once, pangeo-binder", f"{together:.1f} s", str(built),
                      f"{together / one:.2f}x one build")
        table.add_row(f"{n} at once, each its own build (naive)", f"{apart:.1f} s",
                      str(apart_built), f"{apart / together:.1f}x pangeo-binder")
        console.print(table)
        console.print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        for ref in [t for i in engine.client.images.list() for t in i.tags
                    if t.startswith(PREFIX)]:
            engine.remove(ref)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
