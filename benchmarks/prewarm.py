"""Prewarm benchmark, measured in one run (after scripts/test has set up the dev cluster
and the local registry):

    KUBECONFIG=... PANGEO_BINDER_TEST_REGISTRY=localhost:5000 python benchmarks/prewarm.py

A session image with 1 GiB more than the Pangeo base (examples/quickstart's image plus
1 GiB of data in a layer of its own) is pushed to the registry. Then `launch
--kubernetes` → JupyterLab ready is timed cold, with that image not on the node (the
kubelet pulls it), and after `prewarm` pulled it. The base layers are on the node both
times, as on a node that has run any Pangeo session (a fresh node of a scale-up has
none, and is slower still).

Both are measured twice: pulling straight from the loopback registry (about as fast as a
pull can be), and through a proxy that passes at most 100 MB/s — a stand-in for a
registry across a network, since none is reachable here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
RUN = uuid.uuid4().hex[:6]
SESSION = ["--max-workers", "1", "--worker-cores", "100m", "--worker-memory", "256Mi"]
RATE = 100 * 10**6  # bytes per second through the throttling proxy


class ThrottlingProxy:
    """TCP proxy to the registry passing at most `rate` bytes/s from it, over all
    connections together (a shared link), in daemon threads."""

    def __init__(self, target: tuple[str, int], rate: int) -> None:
        self.target, self.rate = target, rate
        self.lock = threading.Lock()
        self.next_free = time.monotonic()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.server.accept()
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream, False),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True),
                             daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, throttled: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if throttled:
                    with self.lock:  # reserve this chunk's slot on the shared link
                        start = max(self.next_free, time.monotonic())
                        self.next_free = start + len(chunk) / self.rate
                    time.sleep(max(0.0, start - time.monotonic()))
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


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
    docker("rmi", "--force", image, check=False)  # may not be here at all
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
        # The 1 GiB layer is committed from a container rather than built: BuildKit's
        # cache would keep a built layer on the node after `docker rmi`, and every
        # "cold" pull would find it there.
        session = pangeo_binder("build", str(ROOT / "examples" / "quickstart"))
        image = f"{registry}/bench-prewarm/big-session:{RUN}"
        container = f"pangeo-binder-bench-{RUN}"
        docker("run", "--name", container, session, "sh", "-c",
               "head -c 1073741824 /dev/urandom > /home/jovyan/data.bin")
        docker("commit", container, image)
        docker("rm", container)
        docker("push", image)
        size = int(docker("image", "inspect", "-f", "{{.Size}}", image))
        results = {}
        proxy = ThrottlingProxy(("127.0.0.1", int(registry.rsplit(":", 1)[1])), RATE)
        for label, host in (("loopback registry", registry),
                            ("registry at 100 MB/s", f"localhost:{proxy.port}")):
            results[label] = cold_and_warm(image.replace(registry, host, 1), Path(tmp))
        off_the_node(image)

    table = Table(title=f"Session start (launch → JupyterLab ready), {size / 2**30:.2f} GiB "
                        "image, 1 GiB of it not on the node")
    for column in ("pulled from", "cold s", "after prewarm s", "ratio", "prewarm itself s"):
        table.add_column(column)
    for label, (cold, warm, prewarm) in results.items():
        table.add_row(label, f"{cold:.1f}", f"{warm:.1f}", f"{cold / warm:.1f}x",
                      f"{prewarm:.1f}")
    Console().print(table)


def cold_and_warm(image: str, tmp: Path) -> tuple[float, float, float]:
    """(cold start, start after prewarm, the prewarm) of `image`, in seconds."""
    workshop = tmp / "workshop.yaml"
    workshop.write_text(f"name: bench-{RUN}\nimage_prefix: {image.rsplit('/', 1)[0]}/\n"
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
    return cold, warm, prewarm


if __name__ == "__main__":
    main()
