"""The dev cluster script's bookkeeping (deploy/dev-cluster/cluster), on a scratch state dir."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import REPO_ROOT

CLUSTER = REPO_ROOT / "deploy/dev-cluster/cluster"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the dev cluster script runs as root")


def status(state: Path) -> str:
    result = subprocess.run([str(CLUSTER), "status"], capture_output=True, text=True,
                            env={**os.environ, "PANGEO_BINDER_DEV_CLUSTER_DIR": str(state)},
                            check=False, timeout=60)
    assert result.returncode == 1, "a cluster with nothing running must not report up"
    return result.stdout


def test_a_pid_file_naming_another_process_is_not_a_running_component(tmp_path):
    # A component killed from outside leaves its pid file; once another process has that
    # pid, `up` must still start the component instead of trusting the file.
    (tmp_path / "run").mkdir()
    (tmp_path / "run/kube-controller-manager.pid").write_text(f"{os.getpid()}\n")
    with subprocess.Popen(["sleep", "60"]) as sleeper:
        (tmp_path / "run/etcd.pid").write_text(f"{sleeper.pid}\n")
        try:
            lines = status(tmp_path).splitlines()
        finally:
            sleeper.kill()
    assert any(line.split() == ["kube-controller-manager", "stopped"] for line in lines), lines
    assert any(line.split() == ["etcd", "stopped"] for line in lines), lines


def test_a_running_component_is_recognised_by_its_program(tmp_path):
    # A process whose program is named like the component counts as that component.
    program = tmp_path / "bin/kube-scheduler"
    program.parent.mkdir()
    program.symlink_to("/bin/sleep")
    (tmp_path / "run").mkdir()
    with subprocess.Popen([str(program), "60"]) as scheduler:
        (tmp_path / "run/kube-scheduler.pid").write_text(f"{scheduler.pid}\n")
        try:
            lines = status(tmp_path).splitlines()
        finally:
            scheduler.kill()
    assert f"running (pid {scheduler.pid})" in next(
        line for line in lines if line.startswith("kube-scheduler ")), lines
