"""Launch benchmarks, measured in one run (after scripts/test has set up the dev cluster):

    KUBECONFIG=... python benchmarks/launch.py

(a) launch -> JupyterLab ready, locally: `pangeo-binder launch IMAGE` against the naive
    `docker run -p ... IMAGE` and polling until JupyterLab answers;
(b) the same on the dev cluster: `launch --kubernetes` (namespace, RBAC, quota, secret,
    pod, service) against a bare `kubectl run` pod of the same size and readiness probe;
(c) KubeCluster() -> 2 workers ready, from inside a session, image already on the node
    (no naive counterpart: reported as a time).

Each figure is also compared with the one docs/performance.md's table holds (the
previous run).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from recorded_figures import change, markdown, previous
from rich.console import Console
from rich.table import Table

from pangeo_binder.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
USER = f"bench-{uuid.uuid4().hex[:6]}"
# Workers small enough for a 2-core machine; the session at its default size (1 core).
TABLE = "launch benchmark"  # the first header cell of its table in docs/performance.md
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
from datetime import datetime
warnings.simplefilter("ignore")
import kr8s
from dask_kubernetes.operator import KubeCluster
from distributed import Client
started = time.perf_counter()
created = datetime.now().astimezone()
cluster = KubeCluster(name="bench", n_workers=2, quiet=True)
returned = time.perf_counter() - started
Client(cluster).wait_for_workers(2, timeout=300)
print("\\nSECONDS", time.perf_counter() - started)
# Where the time went: the client's own steps, and each pod's record (the API's
# timestamps are whole seconds; the pods' log lines are exact).
def at(stamp):
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (when - created).total_seconds()
for when, message in cluster._cluster_manager_logs:
    print(f"STEP {(when.astimezone() - created).total_seconds():.1f} s: {message}")
print(f"STEP {returned:.1f} s: KubeCluster() returned")
for pod in kr8s.get("pods", namespace=cluster.namespace,
                    label_selector={"dask.org/cluster-name": "bench"}):
    conditions = {c["type"]: c["lastTransitionTime"] for c in pod.status.conditions}
    component = pod.metadata.labels["dask.org/component"]
    print(f"POD {component}: created {at(pod.metadata.creationTimestamp):.0f} s, "
          f"ready {at(conditions['Ready']):.0f} s")
    for line in pod.logs(timestamps=True):
        stamp, _, text = line.partition(" ")
        if any(key in text for key in ("Scheduler at", "Registered to", "Start worker")):
            print(f"POD {component}: {text.split(' - ')[-1].strip()} at {at(stamp):.1f} s")
cluster.close()
"""

# Where a session's start goes inside the image: Jupyter Server, then each server
# extension it loads, imported one after the other in one interpreter (each figure is
# what that import adds).
SERVER_IMPORTS = """
import importlib, time
for module in ["jupyter_server.serverapp", "jupyterlab", "jupyter_server_terminals",
               "jupyter_server_proxy", "dask_labextension", "nbgitpuller", "notebook_shim"]:
    started = time.perf_counter()
    importlib.import_module(module)
    print(module, round(time.perf_counter() - started, 2))
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
        dask_steps = [line.removeprefix("STEP ") for line in out.splitlines()
                      if line.startswith("STEP ")]
        dask_pods = [line.removeprefix("POD ") for line in out.splitlines()
                     if line.startswith("POD ")]
    finally:
        pangeo_binder("stop", "--kubernetes", "--user", USER)

    before = previous(TABLE)
    header = [TABLE, "pangeo-binder", "naive", "pangeo-binder / naive", "recorded", "change"]
    table = Table(title="launch benchmarks (one run, this machine)")
    for column in header:
        table.add_column(column, justify="left" if column == TABLE else "right")
    cells = []
    for name, ours, naive in (
            ("(a) local launch -> JupyterLab ready", local_ours, local_naive),
            ("(b) Kubernetes launch -> JupyterLab ready", kube_ours, kube_naive),
            ("(c) KubeCluster() -> 2 workers ready", workers, None)):
        cells.append([name, f"{ours:.1f} s", "-" if naive is None else f"{naive:.1f} s",
                      "-" if naive is None else f"{ours / naive:.2f}",
                      f"{before[name]:.1f} s" if name in before else "-",
                      change(ours, before.get(name))])
        table.add_row(*cells[-1])
    console.print(table)
    console.print("(b) naive: a bare pod (same size and readiness probe) with no namespace, "
                  "RBAC, quota, token or service")
    imports = run(settings.docker_cli, "run", "--rm", "--network=none", image, "python", "-c",
                  SERVER_IMPORTS)
    console.print("(a) imports at JupyterLab's start, in seconds: "
                  + ", ".join(imports.splitlines()))
    console.print("(c) KubeCluster()'s steps: " + "; ".join(dask_steps))
    console.print("(c) the Dask pods, from KubeCluster(): " + "; ".join(dask_pods))
    console.print("\nFor docs/performance.md:\n" + markdown(header[:4], [c[:4] for c in cells]))


if __name__ == "__main__":
    main()
