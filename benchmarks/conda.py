"""Conda benchmark: solve + lock of an environment.yml, measured in one run.

    python benchmarks/conda.py        (after scripts/setup-venv)

conda-forge is not reachable here, so the channel is a local file channel of real conda
packages made like the tests' (tests/helpers/conda_channel.py): PACKAGES packages with VERSIONS
versions each and a seeded random dependency graph, indexed by py-rattler.

(a) `pangeo-binder lock` of a repository environment.yml with an empty cache: the merge
    with the base, the py-rattler solve for linux-64 and the conda-lock.yml, end to end
    through the CLI;
(b) the same command again: the cached lock (solved once);
(c) conda-lock on the same merged spec, where a conda, mamba or micromamba binary is on
    PATH (none is here: then it says so and skips).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

# Run as a script (python benchmarks/conda.py): the tests' helpers, from this checkout.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.helpers.conda_channel import index_channel, make_package

PACKAGES = 300
VERSIONS = 4
SEED = 20261122


def make_channel(channel: Path) -> list[str]:
    """The synthetic channel; returns the package names."""
    rng = random.Random(SEED)
    names = [f"pkg{i:03d}" for i in range(PACKAGES)]
    for index, name in enumerate(names):
        for version in range(1, VERSIONS + 1):
            # Dependencies only on earlier packages: a graph, never a cycle.
            deps = [f"{dep} >={rng.randint(1, VERSIONS - 1)}"
                    for dep in rng.sample(names[:index], min(index, rng.randint(0, 4)))]
            make_package(channel, name, f"{version}.0", deps,
                         subdir=rng.choice(["noarch", "linux-64"]))
    index_channel(channel)
    return names


def cli(*args: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pangeo_binder", *args],
                            capture_output=True, text=True, env={**os.environ, **env})
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"pangeo-binder {' '.join(args)} failed: {result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    console = Console()
    with tempfile.TemporaryDirectory(prefix="pangeo-binder-bench-") as tmp:
        root = Path(tmp)
        console.print(f"making a channel of {PACKAGES}x{VERSIONS} conda packages ...")
        names = make_channel(root / "channel")
        base = root / "base.yml"
        base.write_text("channels: [conda-forge]\ndependencies:\n"
                        + "".join(f"  - {name} =={VERSIONS}.0\n" for name in names[:5]))
        repo = root / "repo"
        (repo / "binder").mkdir(parents=True)
        (repo / "binder" / "environment.yml").write_text(
            "channels: [conda-forge]\ndependencies:\n"
            + "".join(f"  - {name}\n" for name in names[-40:]))
        env = {"PANGEO_BINDER_CONDA_CHANNELS": f"conda-forge={(root / 'channel').as_uri()}",
               "PANGEO_BINDER_CONDA_BASE": str(base),
               "PANGEO_BINDER_CACHE_DIR": str(root / "cache")}
        lock = root / "conda-lock.yml"
        cold = cli("lock", str(repo), "-o", str(lock), env=env)
        warm = cli("lock", str(repo), "-o", str(lock), env=env)
        locked = lock.read_text().count("manager: conda")

        table = Table(title=f"solve + lock: {locked} packages locked from a "
                            f"{PACKAGES * VERSIONS}-package local channel")
        table.add_column("what")
        table.add_column("seconds", justify="right")
        table.add_column("ratio", justify="right")
        table.add_row("pangeo-binder lock (py-rattler, empty cache)", f"{cold:.2f}", "1.0x")
        table.add_row("pangeo-binder lock again (cached lock)", f"{warm:.2f}",
                      f"{cold / warm:.1f}x faster")
        conda = next(filter(None, map(shutil.which, ("micromamba", "mamba", "conda"))), None)
        if conda is None:
            note = ("conda-lock: skipped, no conda, mamba or micromamba binary on PATH "
                    "(none is reachable on this machine)")
        else:
            merged = root / "merged.yml"
            merged.write_text(base.read_text().replace("channels: [conda-forge]",
                                                       f"channels: [{(root / 'channel').as_uri()}]")
                              + "".join(f"  - {name}\n" for name in names[-40:]))
            started = time.perf_counter()
            subprocess.run(["conda-lock", "lock", "-f", str(merged), "-p", "linux-64",
                            "--conda", conda, "--lockfile", str(root / "cl.yml")],
                           check=True, capture_output=True)
            other = time.perf_counter() - started
            table.add_row(f"conda-lock ({Path(conda).name})", f"{other:.2f}",
                          f"pangeo-binder {other / cold:.1f}x faster")
            note = ""
        console.print(table)
        if note:
            console.print(note)


if __name__ == "__main__":
    main()
