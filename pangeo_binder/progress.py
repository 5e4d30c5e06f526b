"""Drawing a stage's events and running a stage to one line and an exit code: what every
command shares.

Events go to people (on a terminal with rich, elsewhere as plain lines) or to BinderHub
(JSON lines). Nothing here loads click: `pangeo-binder build DIR` answers an unchanged
directory with these before the CLI loads (see `__main__`).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import cached_property
from typing import TypeVar

from .credentials import redact
from .errors import PangeoBinderError
from .events import Event, Phase

T = TypeVar("T")

# Terminal control sequences (colours, cursor moves), which a repository's build output
# may carry: dropped where the stream is no terminal, as click.echo drops them.
_CONTROL_SEQUENCE = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")


def echo(text: str, err: bool = False) -> None:
    """`text` as a line on stdout (or stderr), flushed, as click.echo writes it."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:  # closed when the process started: nothing to write to
        return
    if not stream.isatty():
        text = _CONTROL_SEQUENCE.sub("", text)
    stream.write(text + "\n")
    stream.flush()


_STYLE = {Phase.FAILED: "bold red", Phase.BUILT: "bold green", Phase.PUSHING: "cyan",
          Phase.FETCHING: "blue", Phase.BUILDING: "magenta", Phase.LAUNCHING: "yellow",
          Phase.READY: "bold green"}


class Reporter:
    """Draws events: JSON lines on stdout (BinderHub's protocol), or for people on
    stderr: on a terminal with rich, colours and a spinner holding the latest tool line;
    elsewhere (CI logs, a pipe) as plain lines, without loading rich at all.

    With JSON logs every line written is JSON (a library's warning or log record too),
    and the last one is the `built` event or a `failed` one with the error's one line
    (`fail`)."""

    def __init__(self, json_logs: bool, verbose: bool) -> None:
        self.json_logs = json_logs
        self.verbose = verbose
        self.terminal = sys.stderr.isatty()
        self.status = None
        self.last: Event | None = None
        if json_logs:
            warnings.showwarning = self._warning
            _log_to_events(self)

    def __call__(self, event: Event) -> None:
        # Credentials (a git URL's token, GIT_CREDENTIAL_ENV, registry passwords) never
        # reach a log.
        event = replace(event, message=redact(event.message))
        self.last = event
        if self.json_logs:
            echo(event.to_json())
            return
        if event.detail and not self.verbose:
            if self.status is not None:
                from rich.markup import escape

                self.status.update(escape(event.message[:120]))
            return
        if event.phase is Phase.FAILED:
            return  # the error line says it
        if not self.terminal:
            echo(f"{event.phase:>8} {event.message}", err=True)
            return
        from rich.markup import escape

        style = _STYLE.get(event.phase, "bold")
        self.console.print(f"[{style}]{event.phase:>8}[/] {escape(event.message)}",
                           soft_wrap=True)

    @cached_property
    def console(self):
        from rich.console import Console

        return Console(stderr=True, highlight=False)

    def note(self, message: str) -> None:
        """A line from outside the stages, in the phase of the moment."""
        self(Event(self.last.phase if self.last is not None else Phase.FETCHING, message))

    def _warning(self, message, category, filename, lineno, file=None, line=None) -> None:
        self.note(f"{category.__name__}: {message}")

    def fail(self, message: str) -> None:
        """End the output with `message`, the error's one line: a `failed` event with
        JSON logs (unless the stage's own `failed` event said exactly that), else
        `pangeo-binder: MESSAGE` on stderr."""
        message = " ".join(redact(message).split())
        if not self.json_logs:
            echo(f"pangeo-binder: {message}", err=True)
            return
        text = message.removeprefix("error: ")
        if self.last is None or (self.last.phase, " ".join(self.last.message.split())) != \
                (Phase.FAILED, text):
            self(Event(Phase.FAILED, text))

    @contextmanager
    def running(self) -> Iterator[None]:
        if self.json_logs or self.verbose or not self.terminal:
            yield
            return
        with self.console.status("working") as status:
            self.status = status
            try:
                yield
            finally:
                self.status = None


def _log_to_events(reporter: Reporter) -> None:
    """Send the log records a library writes (instead of Python's last-resort stderr
    line) to `reporter` as events. `logging` loads only here: JSON logs need it."""
    import logging

    class LogToEvents(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            reporter.note(f"{record.levelname.lower()}: {record.getMessage()}")

    logging.getLogger().addHandler(LogToEvents(logging.WARNING))


class Terminated(BaseException):
    """SIGTERM, which is how Kubernetes stops a build pod (and a container's PID 1 gets
    no default action for it): unwound like Ctrl-C, so the stages remove their
    candidate images and containers on the way out."""


def _terminate(signum: int, frame: object) -> None:
    # One unwinding: a second SIGTERM must not interrupt the clean-up of the first.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated("terminated (SIGTERM)")


def run_stage(reporter: Reporter | None, stage: Callable[[], T],
              error_code: int = 1) -> T:
    """Run a stage; a user error becomes one line (on stderr, or with JSON logs the
    last `failed` event) and exit code `error_code`; Ctrl-C and SIGTERM stop it cleanly."""
    failed = reporter or Reporter(False, False)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        if reporter is None:
            return stage()
        with reporter.running():
            return stage()
    except PangeoBinderError as exc:
        failed.fail(f"error: {exc}")
        sys.exit(error_code)
    except KeyboardInterrupt:
        failed.fail("interrupted")
        sys.exit(130)
    except Terminated as exc:
        failed.fail(str(exc))
        sys.exit(128 + signal.SIGTERM)
    except Exception as exc:
        if os.environ.get("PANGEO_BINDER_DEBUG"):
            raise
        failed.fail(f"internal error: {type(exc).__name__}: {exc} "
                    "(set PANGEO_BINDER_DEBUG=1 for the traceback)")
        sys.exit(70)
