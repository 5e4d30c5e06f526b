"""`pangeo-binder test` without Docker: the runner's protocol and notebook selection,
the typed results, and the JUnit XML and Markdown a CI job gets."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pangeo_binder.checks import run_notebooks
from pangeo_binder.checks.notebook_report import junit_xml, markdown, plain_lines
from pangeo_binder.checks.notebooks import (
    MARK,
    NotebookReport,
    NotebookResult,
    NotebookTestError,
    RunnerLog,
    Status,
)
from pangeo_binder.events import Event, Phase
from tests.helpers.cli import run_cli
from tests.helpers.repos import write_tree

RESULTS = (
    NotebookResult("intro.ipynb", Status.PASSED, 4.2),
    NotebookResult("analysis/broken.ipynb", Status.FAILED, 1.1, cell=3,
                   source="raise ValueError('no | pipes')", ename="ValueError",
                   evalue="no | pipes",
                   traceback=("Traceback (most recent call last)", "----> 1 raise ValueError",
                              "ValueError: no | pipes \x08")),
    NotebookResult("hang.ipynb", Status.TIMEOUT, 5.0, cell=2, source="time.sleep(600)",
                   evalue="the notebook ran longer than 5 s"),
)
REPORT = NotebookReport(target="examples/tutorial", image="pangeo-binder/tutorial:abc",
                        results=RESULTS, duration=10.3)


def line(kind: str, **fields) -> str:
    return MARK + json.dumps({"kind": kind, **fields}) + "\n"


def test_runner_lines_become_results_in_plan_order_and_events():
    events: list[Event] = []
    log = RunnerLog(events.append)
    log.feed_all([
        "start script says hello\n",
        line("plan", notebooks=["b.ipynb", "a.ipynb"], parallel=2),
        line("start", path="b.ipynb"),
        # A kernel's partial line, glued to the runner's in a Kubernetes log.
        "partial" + line("result", path="a.ipynb", status="failed", duration=1.5, cell=3,
                         source="1/0", ename="ZeroDivisionError", evalue="division by zero",
                         traceback=["ZeroDivisionError: division by zero"]),
        line("result", path="b.ipynb", status="passed", duration=2.0),
        line("done"),
    ])
    results = log.finish()
    assert [r.path for r in results] == ["b.ipynb", "a.ipynb"]
    assert results[1].failure == "cell 3 (1/0): ZeroDivisionError: division by zero"
    assert log.done and "partial" in log.other
    testing = [e for e in events if not e.detail]
    assert testing[0].message == "Running 2 notebooks, 2 at a time"
    assert testing[1].data["status"] == "failed" and testing[1].data["cell"] == 3
    assert json.loads(testing[1].to_json())["path"] == "a.ipynb"


def test_notebooks_the_runner_did_not_finish_are_reported():
    log = RunnerLog(lambda event: None)
    log.feed_all([line("plan", notebooks=["a.ipynb", "b.ipynb"]),
                  line("result", path="a.ipynb", status="passed", duration=1)])
    stopped = log.finish("the notebooks ran longer than their 120 s in all")
    assert [r.status for r in stopped] == [Status.PASSED, Status.TIMEOUT]
    assert stopped[1].failure == "the notebooks ran longer than their 120 s in all"
    assert log.finish()[1].status is Status.ERROR  # ended on its own, without a result


def test_a_runner_that_refused_or_never_started_is_one_error():
    refused = RunnerLog(lambda event: None)
    refused.feed(line("error", message="no such notebook: missing.ipynb"))
    with pytest.raises(NotebookTestError, match=r"no such notebook: missing\.ipynb"):
        refused.finish()
    silent = RunnerLog(lambda event: None)
    silent.feed("python: not found\n")
    with pytest.raises(NotebookTestError, match="did not start: python: not found"):
        silent.finish()


def test_a_malformed_result_is_refused():
    with pytest.raises(NotebookTestError, match="unreadable result"):
        NotebookResult.from_message({"path": "a.ipynb", "status": "exploded"})


def test_junit_has_a_testcase_per_notebook_with_failure_and_timeout():
    root = ET.fromstring(junit_xml(REPORT))
    [suite] = root.findall("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases) == ["intro.ipynb", "analysis/broken.ipynb", "hang.ipynb"]
    assert list(cases["intro.ipynb"]) == []
    failure = cases["analysis/broken.ipynb"].find("failure")
    assert failure.get("type") == "ValueError"
    assert failure.get("message").startswith("cell 3 (raise ValueError")
    assert "ValueError: no | pipes ?" in failure.text  # a control character made safe
    timeout = cases["hang.ipynb"].find("error")
    assert timeout.get("type") == "timeout" and "cell 2" in timeout.get("message")
    assert float(cases["hang.ipynb"].get("time")) == 5.0
    image = suite.find("properties/property")
    assert (image.get("name"), image.get("value")) == ("image", REPORT.image)


def test_markdown_summary_has_the_table_and_tracebacks():
    text = markdown(REPORT)
    assert text.startswith("## ❌ examples/tutorial: 1 of 3 notebooks passed\n")
    assert "1 passed, 1 failed, 1 timed out of 3 notebooks in 10.3 s" in text
    row = next(r for r in text.splitlines() if "broken.ipynb` |" in r)
    assert row.count(" | ") == 3  # the error's pipe is escaped, not a column
    assert "❌ failed" in row and "cell 3 `raise ValueError('no \\| pipes')`" in row
    assert "<details><summary>analysis/broken.ipynb: ValueError</summary>" in text
    passing = NotebookReport("t", "i", RESULTS[:1], 4.2)
    assert markdown(passing).startswith("## ✅ t: 1 of 1 notebooks passed")


def test_plain_lines_name_each_result():
    lines = plain_lines(REPORT)
    assert lines[0].split() == ["PASSED", "4.2", "s", "intro.ipynb"]
    assert lines[2].endswith("hang.ipynb  cell 2 (time.sleep(600)): the notebook ran longer "
                             "than 5 s")


def test_selection_finds_the_repository_notebooks(tmp_path, monkeypatch):
    write_tree(tmp_path, {"intro.ipynb": "{}", "lessons/one.ipynb": "{}",
                          "lessons/.ipynb_checkpoints/one-checkpoint.ipynb": "{}",
                          ".local/share/x.ipynb": "{}", "drafts/wip.ipynb": "{}",
                          "README.md": "", "data/table.csv": ""})
    monkeypatch.chdir(tmp_path)
    select = run_notebooks.select
    assert select([], []) == ["drafts/wip.ipynb", "intro.ipynb", "lessons/one.ipynb"]
    assert select([], ["drafts/*"]) == ["intro.ipynb", "lessons/one.ipynb"]
    assert select(["lessons", "intro.ipynb"], []) == ["intro.ipynb", "lessons/one.ipynb"]
    for named, message in [(["missing.ipynb"], "no such notebook: missing.ipynb"),
                           (["README.md"], "README.md is not a notebook"),
                           (["data"], "no notebooks in data"),
                           (["intro.ipynb"], "all excluded")]:
        with pytest.raises(run_notebooks.SelectionError, match=message):
            select(named, ["intro.ipynb"] if "excluded" in message else [])


def test_runner_says_why_it_cannot_run_on_stdout_alone(tmp_path):
    write_tree(tmp_path, {"intro.ipynb": "{}"})

    def runner(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-", *args], input=run_notebooks_source(),
                              capture_output=True, text=True, cwd=tmp_path, check=False)

    missing = runner("missing.ipynb")
    assert missing.returncode == 2
    assert missing.stdout == line("error", message="no such notebook: missing.ipynb")
    # The test environment has no nbclient: what an image without one says.
    without = runner()
    assert without.returncode == 2 and "has no nbclient" in without.stdout


def run_notebooks_source() -> str:
    return Path(run_notebooks.__file__).read_text()


def test_cli_refuses_unwritable_reports_and_bad_combinations(tmp_path):
    repo = write_tree(tmp_path / "repo", {"intro.ipynb": "{}"})
    result = run_cli("test", str(repo), "--junit", str(tmp_path / "no" / "junit.xml"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"pangeo-binder: error: cannot write {tmp_path}/no/junit.xml: no directory "
        f"{tmp_path}/no"]
    image = run_cli("test", "pangeo-binder/some-image:abc", "--ref", "main")
    assert image.returncode == 1
    assert "--ref needs a source to build" in image.stderr and "Traceback" not in image.stderr
    usage = run_cli("test", str(repo), "--kubernetes", "--no-network")
    assert usage.returncode == 2 and "--no-network runs on the local engine only" in usage.stderr
    assert run_cli("test", str(repo), "--timeout", "0").returncode == 2


def test_json_events_carry_their_data_under_the_protocol_fields():
    event = Event(Phase.TESTING, "passed a.ipynb", data={"path": "a.ipynb", "phase": "x"})
    assert json.loads(event.to_json()) == {"path": "a.ipynb", "phase": "testing",
                                           "message": "passed a.ipynb\n"}


def test_the_job_pod_is_made_like_a_session_pod_and_passes_admission():
    from pangeo_binder.checks.notebook_job import JobNames, JobTarget, job_manifest
    from pangeo_binder.checks.notebooks import NotebookOptions
    from pangeo_binder.dask_operator.admission import Policy, Session, pod_violations
    from pangeo_binder.sessions.objects import KubeTarget

    names = JobNames.new("ada-lovelace")
    job = job_manifest("registry.example.org/tutorial:abc", NotebookOptions(timeout=60),
                       JobTarget(KubeTarget(user="ada-lovelace")), names, deadline=600)
    assert job["kind"] == "Job" and job["metadata"]["namespace"] == "pangeo-ada-lovelace"
    assert job["metadata"]["name"] == names.job and len(names.job) <= 63
    assert job["spec"]["backoffLimit"] == 0
    template = job["spec"]["template"]
    assert template["metadata"]["labels"]["pangeo-binder/session"] == "true"
    assert template["metadata"]["labels"]["pangeo-binder/user"] == "ada-lovelace"
    pod = template["spec"]
    assert pod["serviceAccountName"] == "pangeo-ada-lovelace"
    assert pod["restartPolicy"] == "Never"
    [container] = pod["containers"]
    assert container["args"][:2] == ["python", "-c"]
    assert container["args"][2] == Path(run_notebooks.__file__).read_text()
    assert container["args"][3:] == ["--parallel", "2", "--timeout", "60", "--"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DASK_KUBERNETES__NAME"] == names.clusters + "{uuid}"
    assert env["DASK_KUBERNETES__IMAGE"] == "registry.example.org/tutorial:abc"
    assert env["DASK_KUBERNETES__NAMESPACE"] == "pangeo-ada-lovelace"
    assert "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT" in env
    session = Session(images=frozenset({container["image"]}))
    assert pod_violations(pod, "spec", session, Policy(), dask=False) == []


def test_the_watchdog_stops_a_runner_that_does_not_start_or_outlives_its_budget():
    from pangeo_binder.checks.notebooks import NotebookOptions, Watchdog

    def watched(options: NotebookOptions, plan: bool) -> list[str]:
        log, reasons = RunnerLog(lambda event: None), []
        if plan:
            log.feed(line("plan", notebooks=["a.ipynb", "b.ipynb", "c.ipynb"]))
        Watchdog(log, options, reasons.append, startup=0.2, slack=0.1)
        return reasons

    silent = watched(NotebookOptions(), plan=False)
    # 3 notebooks, 2 at a time: two rounds of 0.3 s, within 0.2 s of starting.
    slow = watched(NotebookOptions(timeout=0.2), plan=True)
    in_time = watched(NotebookOptions(timeout=60), plan=True)
    time.sleep(1.2)
    assert silent == ["the notebook runner did not start within 0.2 s"]
    assert slow == ["the notebooks ran longer than their 1 s in all"]
    assert in_time == []
