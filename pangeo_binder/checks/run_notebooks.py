"""Run a repository's notebooks headless inside its image and report each result.

`pangeo-binder test` ships this file into the image (on stdin locally, as `python -c`
in a Kubernetes Job) and runs it with the image's own Python, through the image's
entrypoint and the repository's `start` script, as uid 1000, in the repository
directory: the notebooks meet the environment a session gives them. So it may use only
the standard library and what every session image has (nbclient, nbformat, ipykernel),
and must run on every Python an image may have (3.10 and later).

Each notebook is read into memory and executed there with the `python3` kernel: the
files stay as they are. `--parallel` notebooks run at a time, each with a per-cell and
a per-notebook timeout; a notebook past its time has its kernel killed (the kernel's
whole process group: a LocalCluster's workers too) and the others carry on.

Output: one line per message on stdout, `pangeo-binder-notebook: {json}`: the plan (the
notebooks), each start and each result, then `done`; or one `error` (a notebook that
does not exist, none at all). Everything else the process and its kernels write goes to
stderr, so stdout carries only these lines (a Kubernetes log mixes both streams: the
prefix tells them apart).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import json
import os
import re
import sys
import time

MARK = "pangeo-binder-notebook: "
TRACEBACK_LINES = 12  # the tail of a traceback a result carries
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Not the repository's notebooks: caches, installed packages, checkpoints.
_SKIPPED_DIRS = {"__pycache__", "node_modules", "site-packages"}


class SelectionError(Exception):
    """The notebooks asked for do not exist, or there are none."""


def _say(out, kind: str, **fields) -> None:
    out.write(MARK + json.dumps({"kind": kind, **fields}) + "\n")
    out.flush()


def _notebooks_under(directory: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS]
        found += [os.path.normpath(os.path.join(root, name)) for name in files
                  if name.endswith(".ipynb") and not name.startswith(".")]
    return found


def select(named: list[str], exclude: list[str]) -> list[str]:
    """The notebooks to run, relative to the working directory: those `named` (files,
    or directories meaning every notebook under them), by default all of them, minus
    those matching an `exclude` glob."""
    chosen: list[str] = []
    for name in named or ["."]:
        if os.path.isdir(name):
            under = _notebooks_under(name)
            if not under and named:
                raise SelectionError(f"no notebooks in {name}")
            chosen += under
        elif not os.path.exists(name):
            raise SelectionError(f"no such notebook: {name}")
        elif not name.endswith(".ipynb"):
            raise SelectionError(f"{name} is not a notebook (.ipynb)")
        else:
            chosen.append(os.path.normpath(name))
    kept = sorted({path for path in chosen
                   if not any(fnmatch.fnmatch(path, glob) for glob in exclude)})
    if not kept:
        raise SelectionError("no notebooks to run" + (" (all excluded)" if chosen else
                                                      " in the repository"))
    return kept


def _first_line(source: str) -> str:
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    return lines[0][:120] if lines else ""


def _error_output(cell) -> tuple[str, str, list[str]]:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            lines = [_ANSI.sub("", part) for entry in output.get("traceback", [])
                     for part in entry.splitlines()]
            return output.get("ename", ""), output.get("evalue", ""), lines
    return "", "", []


async def _kill(client) -> None:
    """Kill the notebook's kernel, with its process group (jupyter_client starts each
    kernel in a session of its own and signals the group)."""
    km = getattr(client, "km", None)
    if km is None:
        return
    with contextlib.suppress(Exception):  # already dead, or never started
        await asyncio.wait_for(km.shutdown_kernel(now=True), 20)


async def run_notebook(path: str, cell_timeout: float | None, timeout: float) -> dict:
    """Execute one notebook; its result as a dict (status passed, failed, timeout or
    error; the first failing cell counted from 1 over all cells)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    started = time.monotonic()
    result: dict = {"path": path, "status": "passed"}
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as exc:  # not JSON, not a notebook
        return {**result, "status": "error", "duration": 0.0, "ename": type(exc).__name__,
                "evalue": f"cannot read the notebook: {exc}"[:500]}
    current: dict = {"index": None}

    def on_cell_start(cell, cell_index, **_) -> None:
        current["index"] = cell_index

    client = NotebookClient(
        notebook, timeout=cell_timeout, kernel_name="python3", shutdown_kernel="immediate",
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}},
        on_cell_start=on_cell_start)
    task = asyncio.ensure_future(client.async_execute())
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        await _kill(client)
        task.cancel()
        await asyncio.wait({task}, timeout=20)
        if task.done() and not task.cancelled():
            task.exception()  # the dead kernel it saw: expected, and retrieved
        result.update(status="timeout",
                      evalue=f"the notebook ran longer than {timeout:g} s; its kernel was "
                             "stopped")
    elif task.exception() is not None:
        exc = task.exception()
        if isinstance(exc, CellTimeoutError):
            result.update(status="timeout", evalue=f"the cell ran longer than {cell_timeout:g} s")
        elif isinstance(exc, CellExecutionError):
            result.update(status="failed", ename=exc.ename, evalue=exc.evalue)
        elif isinstance(exc, DeadKernelError):
            result.update(status="error", ename="DeadKernelError",
                          evalue="the kernel died (out of memory?)")
        else:  # the kernel did not start, a message it could not answer...
            result.update(status="error", ename=type(exc).__name__, evalue=str(exc)[:500])
    index = current["index"]
    if result["status"] != "passed" and index is not None:
        cell = notebook.cells[index]
        ename, evalue, traceback = _error_output(cell)
        if result["status"] == "failed":
            result.update(ename=ename or result["ename"], evalue=evalue or result["evalue"])
        result.update(cell=index + 1, source=_first_line(cell.get("source", "")),
                      traceback=traceback[-TRACEBACK_LINES:])
    result["duration"] = round(time.monotonic() - started, 2)
    return result


async def run_all(paths: list[str], parallel: int, cell_timeout: float | None,
                  timeout: float, out) -> list[dict]:
    slots = asyncio.Semaphore(parallel)

    async def one(path: str) -> dict:
        async with slots:
            _say(out, "start", path=path)
            result = await run_notebook(path, cell_timeout, timeout)
            _say(out, "result", **result)
            return result

    return list(await asyncio.gather(*(one(path) for path in paths)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_notebooks")
    parser.add_argument("notebooks", nargs="*")
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--cell-timeout", type=float, default=None)
    args = parser.parse_args(argv)
    # Our lines alone on stdout: the process's and its kernels' own output to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        paths = select(args.notebooks, args.exclude)
    except SelectionError as exc:
        _say(out, "error", message=str(exc))
        return 2
    try:
        import nbclient  # noqa: F401
    except ImportError:
        _say(out, "error", message="the image has no nbclient to run notebooks with "
                                   "(add nbclient and ipykernel to its requirements)")
        return 2
    _say(out, "plan", notebooks=paths, parallel=args.parallel)
    results = asyncio.run(run_all(paths, max(1, args.parallel), args.cell_timeout,
                                  args.timeout, out))
    _say(out, "done")
    return 0 if all(r["status"] == "passed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
