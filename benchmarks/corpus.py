"""The notebook corpus (tests/corpus/), each repository built once, fresh, in one run.

    python benchmarks/corpus.py [NAME ...]    (after scripts/setup-docker and scripts/setup-venv)

Every repository is copied to a temporary directory and built through the CLI with an empty
cache directory and an image prefix of its own, so every lock is resolved again and every
repository image is new (the Docker engine's layer cache, and so the base images, stay
warm: what is measured is a repository's first build on a machine that has built others).
A repository that needs build options (`--relax`) gets them, as the corpus test gives them.
Then its notebooks are executed inside the image without network, as the corpus test does.
Prints one table: repository, its kind (base: extras on the Pangeo base; standalone: an
environment of its own; relaxed: on the base with `--relax`), build seconds, notebooks
that ran.
"""

from __future__ import annotations

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

# Run as a script (python benchmarks/corpus.py): the tests' helpers, from this checkout.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.helpers.corpus import (
    BUILD_OPTIONS,
    CORPUS,
    execute_command,
    marker,
    notebooks,
    repositories,
)

PREFIX = f"pangeo-binder-bench-corpus-{uuid.uuid4().hex[:8]}/"


def build(repo: Path, cache: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "PANGEO_BINDER_IMAGE_PREFIX": PREFIX,
           "PANGEO_BINDER_CACHE_DIR": str(cache)}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pangeo_binder", "build",
                             *BUILD_OPTIONS.get(repo.name, ()), str(repo)],
                            capture_output=True, text=True, env=env, check=False)
    return result, time.perf_counter() - started


def kind(stderr: str) -> str:
    """What the build's notices say the repository's environment is."""
    notices = [ln for ln in stderr.splitlines() if "Notice:" in ln]
    if any("--relax dropped" in ln for ln in notices):
        return "relaxed"
    if any("standalone environment" in ln for ln in notices):
        return "standalone"
    return "base"


def main(names: list[str]) -> None:
    engine = Engine(Settings.from_env().docker_cli)
    engine.check()
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="pangeo-binder-bench-corpus-"))
    table = Table(title="the notebook corpus, each built once, fresh (one run, this machine)")
    for column in ("repository", "kind", "build", "notebooks ok", "result"):
        table.add_column(column, justify="right" if column in ("build", "notebooks ok")
                         else "left")
    built = total_seconds = 0.0
    try:
        for name in names:
            console.print(f"building {name}...")
            repo = work / name
            shutil.copytree(CORPUS / name, repo, ignore=shutil.ignore_patterns("__pycache__"))
            result, seconds = build(repo, work / f"cache-{name}")
            total_seconds += seconds
            nbs = notebooks(repo)
            if result.returncode != 0:
                error = (result.stderr.strip().splitlines() or ["?"])[-1]
                table.add_row(name, "-", f"{seconds:.1f} s", f"0/{len(nbs)}", error[:90])
                continue
            built += 1
            run = engine.run(result.stdout.strip(), execute_command(nbs), timeout=600)
            ok = sum(marker(name, nb) in run.output.splitlines() for nb in nbs)
            table.add_row(name, kind(result.stderr),
                          f"{seconds:.1f} s", f"{ok}/{len(nbs)}",
                          "ok" if ok == len(nbs) and run.exit_code == 0
                          else f"notebook failed (exit {run.exit_code})")
        console.print(table)
        console.print(f"built {int(built)} of {len(names)} repositories in "
                      f"{total_seconds:.0f} s of builds")
    finally:
        for image in engine.client.images.list():
            for tag in image.tags:
                if tag.startswith(PREFIX):
                    engine.remove(tag)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:] or repositories())
