"""Launch benchmarks, measured in one run (after scripts/test has set up the dev cluster):

    KUBECONFIG=... python benchmarks/launch.py

(a) launch -> JupyterLab ready, locally: `pangeo-binder launch IMAGE` against the naive
    `docker run -p ... IMAGE` and polling until JupyterLab answers;
(b) the same on the dev cluster: `launch --kubernetes` (namespace, RBAC, quota, secret,
    pod, service) against a bare `kubectl run` pod of the same size and readiness probe;
(c) KubeCluster() -> 2 workers ready, from inside a session, image already on the node
    (no naive counterpart: reported as a time).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pangeo_binder.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
USER = f"bench-{uuid.uuid4().hex[:6]}"
# Workers small enough for a 2-core machine; the session at its default size (1 core).
CAPS = ["--max-workers", "2", "--worker-cores", "200m", "--worker-memory", "768Mi"]


def run(*command: str, stdin: str | None = None) -> str:
    result = subprocess.run(command, capture_output=True, text=True, input=stdin, check=False)
    if result.returncode != 0:
        sys.exit(f"benchmark step failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return result.stdout.strip()


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def pangeo_binder(*args: str) -> str:
    return run(sys.executable, "-m", "pangeo_binder", *args)


def naive_local(docker: str, image: str) -> None:
    container = run(docker, "run", "-d", "-p", "127.0.0.1::8888", image)
    try:
        port = run(docker, "port", container, "8888").split(":")[-1]
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2)
                return
            except OSError:
                time.sleep(0.2)
    finally:
        run(docker, "rm", "-f", container)


def naive_kubernetes(image: str) -> None:
    name = f"naive-{USER}"
    # A bare pod, but "ready" means the same as for launch: JupyterLab answers.
    overrides = {"spec": {"containers": [{
        "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
        "args": ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888"],
        "resources": {"limits": {"cpu": "1", "memory": "2Gi"}},
        "readinessProbe": {"httpGet": {"path": "/api", "port": 8888}, "periodSeconds": 2}}]}}
    run("kubectl", "run", name, f"--image={image}", "--restart=Never",
        f"--overrides={json.dumps(overrides)}")
    try:
        run("kubectl", "wait", "--for=condition=Ready", f"pod/{name}", "--timeout=300s")
    finally:
        run("kubectl", "delete", "pod", name, "--grace-period=0", "--force", "--wait=false")


KUBECLUSTER = """
import time, warnings
warnings.simplefilter("ignore")
from dask_kubernetes.operator import KubeCluster
from distributed import Client
started = time.perf_counter()
cluster = KubeCluster(name="bench", n_workers=2)
Client(cluster).wait_for_workers(2, timeout=300)
print("SECONDS", time.perf_counter() - started)
cluster.close()
"""


def main() -> None:
    settings = Settings.from_env()
    console = Console()
    image = pangeo_binder("build", str(ROOT / "examples" / "quickstart"))
    local_naive, _ = timed(lambda: naive_local(settings.docker_cli, image))
    local_ours, _ = timed(lambda: pangeo_binder("launch", image))
    pangeo_binder("stop", image)

    kube_naive, _ = timed(lambda: naive_kubernetes(image))
    try:
        kube_ours, _ = timed(lambda: pangeo_binder("launch", image, "--kubernetes",
                                                   "--user", USER, *CAPS))
        out = run("kubectl", "-n", f"pangeo-{USER}", "exec", "-i", f"pangeo-{USER}-session",
                  "--", "python", "-", stdin=KUBECLUSTER)
        workers = float(out.split("SECONDS")[-1].split()[0])
    finally:
        pangeo_binder("stop", "--kubernetes", "--user", USER)

    table = Table(title="launch benchmarks (one run, this machine)")
    for column in ("measure", "pangeo-binder", "naive", "pangeo-binder / naive"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    table.add_row("(a) local launch -> JupyterLab ready", f"{local_ours:.1f} s",
                  f"{local_naive:.1f} s", f"{local_ours / local_naive:.2f}")
    table.add_row("(b) Kubernetes launch -> JupyterLab ready", f"{kube_ours:.1f} s",
                  f"{kube_naive:.1f} s", f"{kube_ours / kube_naive:.2f}")
    table.add_row("(c) KubeCluster() -> 2 workers ready", f"{workers:.1f} s", "-", "-")
    console.print(table)
    console.print("(b) naive: a bare pod (same size and readiness probe) with no namespace, "
                  "RBAC, quota, token or service")


if __name__ == "__main__":
    main()
