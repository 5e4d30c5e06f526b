"""`pangeo-binder test`: run a repository's notebooks in its image, as a CI job would.

A tutorial's maintainers want to know each week that their repository still works
where users open it, not only that its image builds. So the image is built (or found:
an unchanged repository is a cache hit), and its notebooks run headless inside it by
`run_notebooks.py`, the runner shipped into the image, through the image's entrypoint
and `start` script, as uid 1000: the environment a session gets. Locally that is one
throwaway container on the Docker engine (here); with Kubernetes, a Job in the user's
namespace with the session's Dask setup (`notebook_job`). Either way the runner's lines
become typed results (`RunnerLog`), and `notebook_report` turns them into a table,
JUnit XML and Markdown.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..engine import Engine
from ..errors import DockerError, PangeoBinderError
from ..events import Emit, Event, Phase
from ..settings import Settings

RUNNER = Path(__file__).with_name("run_notebooks.py")
MARK = "pangeo-binder-notebook: "  # as in run_notebooks.py
# Time for the container or pod to start and the runner to find the notebooks.
STARTUP_SECONDS = 300
# Beyond the notebooks' own timeouts: kernel start-up, a kernel's clean-up.
SLACK_SECONDS = 60


class NotebookTestError(PangeoBinderError):
    """The notebooks cannot be tested: none, one that does not exist, a runner that
    could not run."""


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # a cell raised
    TIMEOUT = "timeout"  # a cell or the whole notebook ran out of time
    ERROR = "error"  # it could not run: unreadable, the kernel died or did not start


@dataclass(frozen=True)
class NotebookResult:
    path: str
    status: Status
    duration: float  # seconds
    cell: int | None = None  # the first failing cell, counted from 1 over all cells
    source: str = ""  # that cell's first line
    ename: str = ""
    evalue: str = ""
    traceback: tuple[str, ...] = ()  # its tail, without colours

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> NotebookResult:
        """A result line of the runner; NotebookTestError when it is not one."""
        try:
            cell = data.get("cell")
            return cls(path=str(data["path"]), status=Status(data["status"]),
                       duration=float(data.get("duration") or 0),
                       cell=int(cell) if cell is not None else None,
                       source=str(data.get("source") or ""),
                       ename=str(data.get("ename") or ""),
                       evalue=str(data.get("evalue") or ""),
                       traceback=tuple(str(line) for line in data.get("traceback") or ()))
        except (KeyError, ValueError, TypeError) as exc:
            raise NotebookTestError(f"unreadable result from the notebook runner: {exc}") \
                from None

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    @property
    def error(self) -> str:
        """What went wrong, in one line: `ValueError: boom`."""
        if not self.ename:
            return self.evalue
        return f"{self.ename}: {self.evalue}" if self.evalue else self.ename

    @property
    def failure(self) -> str:
        """Where and what: `cell 3 (raise ValueError("boom")): ValueError: boom`; empty
        for a notebook that passed."""
        if self.passed:
            return ""
        where = f"cell {self.cell}" + (f" ({self.source})" if self.source else "") \
            if self.cell is not None else ""
        return ": ".join(part for part in (where, " ".join(self.error.split())) if part)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "status": str(self.status), "duration": self.duration,
                "cell": self.cell, "source": self.source, "ename": self.ename,
                "evalue": self.evalue, "traceback": list(self.traceback)}


@dataclass(frozen=True)
class NotebookOptions:
    notebooks: tuple[str, ...] = ()  # files or directories; default: all of them
    exclude: tuple[str, ...] = ()  # globs of paths not to run
    parallel: int = 2
    timeout: float = 1200  # seconds per notebook
    cell_timeout: float | None = None  # seconds per cell; None: the notebook's timeout
    network: bool = True

    def __post_init__(self) -> None:
        if self.timeout <= 0 or (self.cell_timeout is not None and self.cell_timeout <= 0):
            raise NotebookTestError("timeouts must be more than 0 seconds")
        if self.parallel < 1:
            raise NotebookTestError("--parallel must be at least 1")

    def runner_args(self) -> list[str]:
        args = ["--parallel", str(self.parallel), "--timeout", f"{self.timeout:g}"]
        if self.cell_timeout is not None:
            args += ["--cell-timeout", f"{self.cell_timeout:g}"]
        for glob in self.exclude:
            args += ["--exclude", glob]
        return [*args, "--", *self.notebooks]

    def budget(self, count: int, slack: float = SLACK_SECONDS) -> float:
        """How long `count` notebooks may take in all, run `parallel` at a time."""
        return math.ceil(count / self.parallel) * (self.timeout + slack)


@dataclass(frozen=True)
class NotebookReport:
    target: str  # the source or image the user named
    image: str
    results: tuple[NotebookResult, ...]
    duration: float
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def count(self, status: Status) -> int:
        return sum(r.status is status for r in self.results)

    @property
    def counts(self) -> dict[str, int]:
        return {str(status): self.count(status) for status in Status}

    @property
    def summary(self) -> str:
        """`1 passed, 1 failed, 1 timed out of 3 notebooks in 20.1 s`."""
        words = {Status.PASSED: "passed", Status.FAILED: "failed",
                 Status.TIMEOUT: "timed out", Status.ERROR: "could not run"}
        parts = [f"{self.count(s)} {word}" for s, word in words.items() if self.count(s)]
        total = len(self.results)
        return (f"{', '.join(parts)} of {total} notebook{'s' if total != 1 else ''} "
                f"in {self.duration:.1f} s")


class RunnerLog:
    """The runner's output, read line by line as it comes: its plan and results as
    typed values, each result as an event; other lines (a kernel's own output, a start
    script's) kept for the message when the runner itself fails."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.plan: tuple[str, ...] | None = None
        self.results: dict[str, NotebookResult] = {}
        self.error: str | None = None
        self.done = False
        self.other: deque[str] = deque(maxlen=20)
        self.plan_arrived = threading.Event()

    def feed(self, line: str) -> None:
        import json

        before, mark, text = line.rstrip("\n").partition(MARK)
        if before.strip():
            self.other.append(before.strip())
        if not mark:
            return
        try:
            message = json.loads(text)
            kind = message["kind"]
        except (ValueError, KeyError, TypeError):
            self.other.append(line.strip())
            return
        if kind == "plan":
            self.plan = tuple(str(path) for path in message["notebooks"])
            self.emit(Event(Phase.TESTING, f"Running {len(self.plan)} notebook"
                                           f"{'s' if len(self.plan) != 1 else ''}, "
                                           f"{message.get('parallel', 1)} at a time"))
            self.plan_arrived.set()
        elif kind == "start":
            self.emit(Event(Phase.TESTING, f"Running {message.get('path')}", detail=True))
        elif kind == "result":
            result = NotebookResult.from_message(message)
            self.results[result.path] = result
            line = f"{result.status:<7} {result.path} ({result.duration:.1f} s)"
            self.emit(Event(Phase.TESTING, line + (f": {result.failure}" if result.failure
                                                   else ""), data=result.to_json()))
        elif kind == "error":
            self.error = str(message.get("message"))
        elif kind == "done":
            self.done = True

    def feed_all(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.feed(line)

    def finish(self, stopped: str | None = None) -> tuple[NotebookResult, ...]:
        """Every planned notebook's result, in the plan's order. A notebook the runner
        did not get to (it was stopped: `stopped` says why) is a timeout; a runner that
        said why it could not start, or never planned, is a NotebookTestError."""
        if self.error:
            raise NotebookTestError(self.error)
        if self.plan is None:
            last = self.other[-1] if self.other else "no output"
            raise NotebookTestError(f"the notebook runner did not start: {stopped or last}")
        return tuple(
            self.results.get(path) or NotebookResult(
                path=path, status=Status.TIMEOUT if stopped else Status.ERROR, duration=0.0,
                evalue=stopped or "the notebook runner ended before this notebook "
                                  f"finished ({self.other[-1] if self.other else 'no output'})")
            for path in self.plan)


class Watchdog:
    """Stops a run (`stop(reason)`) that outlives its budget: the container's start and
    the runner's plan, then every notebook's timeout. The runner keeps its own
    timeouts; this is for a runner that cannot (a start script that hangs, say)."""

    def __init__(self, log: RunnerLog, options: NotebookOptions, stop: Callable[[str], None],
                 startup: float = STARTUP_SECONDS, slack: float = SLACK_SECONDS) -> None:
        self.log, self.options, self.stop = log, options, stop
        self.startup, self.slack = startup, slack
        self.started = time.monotonic()
        self.finished = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        if not self.log.plan_arrived.wait(self.startup):
            if not self.finished.is_set():
                self.stop(f"the notebook runner did not start within {self.startup:g} s")
            return
        assert self.log.plan is not None
        budget = self.options.budget(len(self.log.plan), self.slack)
        remaining = self.started + self.startup + budget - time.monotonic()
        if not self.finished.wait(max(remaining, 0)):
            self.stop(f"the notebooks ran longer than their {budget:.0f} s in all")


def run_local(image: str, options: NotebookOptions, engine: Engine,
              emit: Emit) -> tuple[NotebookResult, ...]:
    """Run the notebooks in one throwaway container of `image` (`--rm`, removed on the
    way out however the run ends: Ctrl-C, SIGTERM, a runner past its time)."""
    engine.check()
    if engine.image_id(image) is None:
        raise NotebookTestError(f"no image {image} on this machine; build it first")
    name = f"pangeo-binder-test-{secrets.token_hex(4)}"
    command = [engine.docker_cli, "run", "--rm", "-i", "--name", name, "--user", "1000:1000",
               "--label", "app.kubernetes.io/part-of=pangeo-binder",
               "--label", "app.kubernetes.io/component=notebook-test",
               "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    if not options.network:
        command += ["--network", "none"]
    command += [image, "python", "-", *options.runner_args()]
    log = RunnerLog(emit)
    stopped: list[str] = []

    def remove(reason: str | None = None) -> None:
        if reason:
            stopped.append(reason)
        subprocess.run([engine.docker_cli, "rm", "--force", name], capture_output=True,
                       check=False)

    emit(Event(Phase.TESTING, f"Starting {image} to run its notebooks"))
    errors: deque[str] = deque(maxlen=20)
    watchdog = Watchdog(log, options, remove)
    process = None
    try:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, errors="replace")
        reader = threading.Thread(target=_read_stderr, args=(process, errors, emit),
                                  daemon=True)
        reader.start()
        assert process.stdin is not None and process.stdout is not None
        with contextlib.suppress(BrokenPipeError):  # ended unread: its output says why
            process.stdin.write(RUNNER.read_text())
            process.stdin.close()
        log.feed_all(process.stdout)
        code = process.wait()
        reader.join(5)
    except OSError as exc:
        raise DockerError(f"cannot run {engine.docker_cli}: {exc.strerror}") from None
    finally:
        watchdog.finished.set()
        # Interrupted (even while Popen was starting the client): the container goes,
        # then its client ends.
        if process is None or process.poll() is None:
            with contextlib.suppress(OSError):
                remove()
            if process is not None:
                process.wait()
    if log.plan is None and not log.error and code == 125:  # the engine's own refusal
        raise DockerError(f"cannot run {image}: {errors[-1] if errors else 'docker run failed'}")
    if log.plan is None and not log.error:
        log.other.extend(errors)
    return log.finish(stopped[0] if stopped else None)


def _read_stderr(process: subprocess.Popen, errors: deque[str], emit: Emit) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        line = line.rstrip()
        if line:
            errors.append(line)
            emit(Event(Phase.TESTING, line, detail=True))


# Runs an image's notebooks: (image, options, emit) -> each notebook's result. Locally
# by default; notebook_job.job_runner gives one that runs them as a Kubernetes Job.
NotebookRunner = Callable[[str, "NotebookOptions", Emit], tuple["NotebookResult", ...]]


def check_notebooks(target: str, ref: str | None, options: NotebookOptions, settings: Settings,
                   emit: Emit, run: NotebookRunner | None = None) -> NotebookReport:
    """Build or find the image of `target` (a source, or an image name), run its
    notebooks with `run` (default: on the local engine) and report each one."""
    from ..spec import looks_like_source, parse_source

    started, wall = time.monotonic(), datetime.now(UTC)
    image = target
    if looks_like_source(target):
        from ..builder.build_or_reuse import image_of

        image = image_of(parse_source(target, ref), settings, emit)
    elif ref is not None:
        raise NotebookTestError(f"--ref needs a source to build; {target} is an image")
    if run is None:
        results = run_local(image, options, Engine(settings.docker_cli), emit)
    else:
        results = run(image, options, emit)
    return NotebookReport(target=target, image=image, results=results,
                          duration=round(time.monotonic() - started, 2), started=wall)
