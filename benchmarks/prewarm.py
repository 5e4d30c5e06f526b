"""Prewarm benchmark, measured in one run (after scripts/test has set up the dev cluster
and the local registry):

    KUBECONFIG=... PANGEO_BINDER_TEST_REGISTRY=localhost:5000 python benchmarks/prewarm.py

A session image with 1 GiB more than the Pangeo base (a repository whose postBuild
writes 1 GiB of data) is pushed to the registry. Then `launch --kubernetes` → JupyterLab
ready is timed twice: cold, with the image not on the node (the kubelet pulls it), and
after `prewarm` pulled it. The base layers are on the node both times, as on a node that
has run any Pangeo session; the registry is on loopback, so a pull here is faster than
from a remote registry and the ratio is a lower bound.
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

ROOT = Path(__file__).resolve().parent.parent
RUN = uuid.uuid4().hex[:6]
SESSION = ["--max-workers", "1", "--worker-cores", "100m", "--worker-memory", "256Mi"]


def pangeo_binder(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "pangeo_binder", *args],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"benchmark step failed: pangeo-binder {' '.join(args)}\n"
                 f"{result.stderr[-2000:]}")
    return result.stdout.strip()


def docker(*args: str, check: bool = True) -> str:
    cli = os.environ.get("PANGEO_BINDER_DOCKER", "/usr/bin/docker")
    return subprocess.run([cli, *args], capture_output=True, text=True, check=check).stdout


def off_the_node(image: str) -> None:
    """Remove the image, and the exited containers of stopped sessions that still hold
    its layers, so that the next start really pulls it."""
    for container in docker("ps", "-aq", "--filter", f"ancestor={image}").split():
        docker("rm", "--force", container, check=False)
    docker("rmi", "--force", image)
    if docker("image", "inspect", image, check=False).strip() not in ("", "[]"):
        sys.exit(f"{image} is still on the node")


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    registry = os.environ.get("PANGEO_BINDER_TEST_REGISTRY", "localhost:5000")
    if not os.environ.get("KUBECONFIG"):
        sys.exit("set KUBECONFIG to the dev cluster's (deploy/dev-cluster/cluster up)")
    with tempfile.TemporaryDirectory(prefix="pangeo-binder-bench-") as tmp:
        repo = Path(tmp) / "big-session"
        shutil.copytree(ROOT / "examples" / "quickstart", repo)
        post_build = repo / "binder" / "postBuild"
        post_build.write_text(f"#!/bin/sh\n# {RUN}: a layer of its own\n"
                              "head -c 1073741824 /dev/urandom > data.bin\n")
        post_build.chmod(0o755)
        image = pangeo_binder("build", str(repo), "--push",
                              "--image-prefix", f"{registry}/bench-prewarm/")
        size = int(docker("image", "inspect", "-f", "{{.Size}}", image))
        workshop = Path(tmp) / "workshop.yaml"
        workshop.write_text(f"name: bench-{RUN}\nimage_prefix: {registry}/bench-prewarm/\n"
                            f"images: [{image}]\npause_image: k8s.gcr.io/pause:3.2\n")

        off_the_node(image)
        cold = timed(lambda: pangeo_binder("launch", image, "--kubernetes",
                                           "--user", f"cold-{RUN}", *SESSION))
        pangeo_binder("stop", "--kubernetes", "--user", f"cold-{RUN}")

        off_the_node(image)
        prewarm = timed(lambda: pangeo_binder("prewarm", str(workshop)))
        warm = timed(lambda: pangeo_binder("launch", image, "--kubernetes",
                                           "--user", f"warm-{RUN}", *SESSION))
        pangeo_binder("stop", "--kubernetes", "--user", f"warm-{RUN}")
        pangeo_binder("prewarm", "stop", str(workshop))
        off_the_node(image)

    table = Table(title=f"Session start, {size / 2**30:.2f} GiB image (1 GiB not on the node)")
    for column in ("measure", "seconds"):
        table.add_column(column)
    table.add_row("cold: launch → JupyterLab ready, image pulled", f"{cold:.1f}")
    table.add_row("after prewarm: launch → JupyterLab ready", f"{warm:.1f}")
    table.add_row("prewarm itself (the day before)", f"{prewarm:.1f}")
    table.add_row("ratio cold / warm", f"{cold / warm:.1f}x")
    Console().print(table)


if __name__ == "__main__":
    main()
