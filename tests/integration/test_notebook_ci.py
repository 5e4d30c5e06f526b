"""`pangeo-binder test`: a repository's notebooks run in its real image, locally and as a
Job on the dev cluster, as a tutorial's weekly CI runs them.

The repository is written here: a notebook that passes (xarray on a Dask LocalCluster,
reading a file beside it), one whose third cell raises, one that hangs, and one that
makes a Dask cluster with `KubeCluster()` (run only on Kubernetes).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET

import pytest

from tests.helpers.cli import EXAMPLES, run_cli
from tests.helpers.engine import container_rows
from tests.helpers.k8s import dask_leftovers, kubectl
from tests.helpers.repos import write_tree

RUN = uuid.uuid4().hex[:6]
TEST_LABEL = "app.kubernetes.io/component=notebook-test"


def notebook(*cells: str) -> str:
    """A notebook of these code cells (a markdown cell first, counted as cell 1)."""
    def code(source: str) -> dict:
        return {"cell_type": "code", "metadata": {}, "execution_count": None,
                "outputs": [], "source": source}

    return json.dumps({
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": "# A lesson"},
                  *map(code, cells)],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 4})


TUTORIAL = {
    "lessons/xarray-dask.ipynb": notebook(
        "import numpy as np, xarray as xr\n"
        "from dask.distributed import Client, LocalCluster",
        "cluster = LocalCluster(n_workers=1, threads_per_worker=1)\nclient = Client(cluster)",
        "scale = float(open('scale.txt').read())  # beside the notebook\n"
        "ds = xr.Dataset({'t': (('x',), np.arange(1000.0))}).chunk({'x': 100})\n"
        "assert float((ds.t * scale).mean().compute()) == 999.0",
        "client.close(); cluster.close()"),
    "lessons/scale.txt": "2\n",
    "failing.ipynb": notebook("a = 1", "raise ValueError('boom in the third cell')",
                              "print('never runs')"),
    "hanging.ipynb": notebook("import time\ntime.sleep(600)"),
    "kube/kubecluster.ipynb": notebook(
        "from dask_kubernetes.operator import KubeCluster\n"
        "cluster = KubeCluster(n_workers=1)",
        "from distributed import Client\nimport dask.array as da\n"
        "client = Client(cluster)\nclient.wait_for_workers(1, timeout=240)",
        "assert da.ones((1000, 1000), chunks=250).sum().compute() == 1_000_000",
        # Left open: the run must remove the cluster its notebook made.
        "print(cluster.name)"),
}


def notebook_containers(docker_engine) -> list[str]:
    return [c["Names"][0].lstrip("/")
            for c in container_rows(docker_engine, label=TEST_LABEL)]


@pytest.fixture(scope="module")
def image(docker_engine, tmp_path_factory) -> str:
    repo = write_tree(tmp_path_factory.mktemp("tutorial"), TUTORIAL)
    result = run_cli("build", str(repo))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_each_notebook_gets_its_result_junit_and_markdown(image, docker_engine, tmp_path):
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.md"
    summary.write_text("# Weekly check\n")
    started = time.monotonic()
    result = run_cli("test", image, "--exclude", "kube/*", "--timeout", "40",
                     "--junit", str(junit), "--markdown", str(summary))
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr[-3000:]
    lines = {line.split()[3]: line for line in result.stdout.splitlines()}
    assert list(lines) == ["failing.ipynb", "hanging.ipynb", "lessons/xarray-dask.ipynb"]
    assert lines["lessons/xarray-dask.ipynb"].startswith("PASSED")
    assert lines["failing.ipynb"].startswith("FAILED")
    assert lines["failing.ipynb"].endswith(
        "cell 3 (raise ValueError('boom in the third cell')): ValueError: boom in the "
        "third cell")
    assert lines["hanging.ipynb"].startswith("TIMEOUT")
    assert "cell 2 (import time): the notebook ran longer than 40 s" in lines["hanging.ipynb"]
    assert "1 passed, 1 failed, 1 timed out of 3 notebooks" in result.stderr
    assert "Traceback" not in result.stderr
    # The hanging notebook was stopped at its timeout while the others ran beside it.
    assert took < 40 + 60, result.stderr[-2000:]

    suite = ET.parse(junit).getroot().find("testsuite")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert len(cases) == 3 and suite.get("failures") == "1" and suite.get("errors") == "1"
    failure = cases["failing.ipynb"].find("failure")
    assert failure.get("type") == "ValueError" and "boom in the third cell" in failure.text
    assert cases["hanging.ipynb"].find("error").get("type") == "timeout"
    assert list(cases["lessons/xarray-dask.ipynb"]) == []
    text = summary.read_text()
    assert text.startswith(f"# Weekly check\n## ❌ {image}: 1 of 3 notebooks passed")
    assert "| `hanging.ipynb` | ⏱️ timeout |" in text
    assert notebook_containers(docker_engine) == []


def test_the_passing_notebook_alone_passes_with_json_logs(image, docker_engine):
    result = run_cli("test", image, "lessons/xarray-dask.ipynb", "--json-logs")
    assert result.returncode == 0, result.stdout[-3000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    [notebook] = [e for e in events if e.get("path")]
    assert (notebook["phase"], notebook["status"]) == ("testing", "passed")
    assert notebook["duration"] > 0
    assert events[-1]["phase"] == "tested" and events[-1]["counts"]["passed"] == 1
    assert events[-1]["imageName"] == image
    assert notebook_containers(docker_engine) == []


def test_a_source_is_built_first_and_bad_input_is_one_line(image, docker_engine, tmp_path):
    for args, message in [
        ((image, "missing.ipynb"), "no such notebook: missing.ipynb"),
        ((image, "--exclude", "*"), "no notebooks to run (all excluded)"),
        (("pangeo-binder-test-none/no-such-image:1",), "no image pangeo-binder-test-none/"),
        ((str(EXAMPLES / "fails-to-build"),), "docker build failed"),
    ]:
        result = run_cli("test", *args)
        assert result.returncode == 1, (args, result.stderr[-2000:])
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("pangeo-binder: error: ") and message in last, last
        assert "Traceback" not in result.stderr
    assert notebook_containers(docker_engine) == []


def test_sigterm_stops_the_run_and_removes_its_container(image, docker_engine):
    process = subprocess.Popen([sys.executable, "-m", "pangeo_binder", "test", image,
                                "hanging.ipynb"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not notebook_containers(docker_engine) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert notebook_containers(docker_engine), "the run did not start its container"
        time.sleep(3)  # the notebook is running
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.strip().splitlines()[-1] == "pangeo-binder: terminated (SIGTERM)"
    assert notebook_containers(docker_engine) == []


def test_kubernetes_job_runs_kubecluster_for_real_and_leaves_nothing(image, tmp_path,
                                                                     dev_cluster):
    user = f"nbtest-{RUN}"
    namespace = f"pangeo-{user}"
    junit = tmp_path / "junit.xml"
    result = run_cli("test", image, "kube/kubecluster.ipynb", "failing.ipynb",
                     "--kubernetes", "--user", user, "--timeout", "300",
                     "--junit", str(junit), "--max-workers", "2", "--worker-cores", "200m",
                     "--worker-memory", "768Mi", "--session-cores", "500m",
                     "--session-memory", "1Gi")
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("FAILED") and "failing.ipynb  cell 3" in lines[0]
    assert lines[1].startswith("PASSED") and lines[1].endswith("kube/kubecluster.ipynb"), \
        result.stderr[-3000:]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    # The Job, its pod and the Dask cluster its notebook left open are gone, and the
    # namespace the run made for the user too.
    assert kubectl("get", "namespace", namespace, check=False) == ""
    assert dask_leftovers(namespace) == []
