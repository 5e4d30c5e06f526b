"""What a CI job gets from `pangeo-binder test`: JUnit XML, a Markdown summary, a table.

JUnit XML is what CI systems draw test results from (GitHub's test reporters, GitLab's
`artifacts:reports:junit`, Jenkins): one testsuite, one testcase per notebook. A cell
that raised is a `<failure>` (a test that ran and failed); a timeout or a notebook that
could not run is an `<error>`, which those readers count and show as not passing, unlike
`<skipped>`, which they hide. The Markdown is for `$GITHUB_STEP_SUMMARY`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from . import refuse_unwritable
from .notebooks import NotebookReport, NotebookResult, NotebookTestError, Status

_SYMBOL = {Status.PASSED: "✅", Status.FAILED: "❌", Status.TIMEOUT: "⏱️", Status.ERROR: "⚠️"}
# Characters XML 1.0 cannot hold at all, even escaped (a traceback may carry them).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("?", text)


def _suite_name(report: NotebookReport) -> str:
    return f"pangeo-binder test {report.target}"


def junit_xml(report: NotebookReport) -> str:
    """The report as a JUnit XML document (one testsuite, a testcase per notebook)."""
    counts = {"tests": str(len(report.results)),
              "failures": str(report.count(Status.FAILED)),
              "errors": str(report.count(Status.TIMEOUT) + report.count(Status.ERROR)),
              "skipped": "0", "time": f"{report.duration:.3f}"}
    root = ET.Element("testsuites", {"name": "pangeo-binder test", **counts})
    suite = ET.SubElement(root, "testsuite", {
        "name": _xml_text(_suite_name(report)), **counts,
        "timestamp": report.started.isoformat(timespec="seconds")})
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "image", "value": _xml_text(report.image)})
    for result in report.results:
        case = ET.SubElement(suite, "testcase", {
            "classname": _xml_text(report.target), "name": _xml_text(result.path),
            "file": _xml_text(result.path), "time": f"{result.duration:.3f}"})
        if result.passed:
            continue
        tag = "failure" if result.status is Status.FAILED else "error"
        kind = result.ename or str(result.status)
        if result.status is Status.TIMEOUT:
            kind = "timeout"
        outcome = ET.SubElement(case, tag, {"type": _xml_text(kind),
                                            "message": _xml_text(result.failure)})
        outcome.text = _xml_text("\n".join(result.traceback) or result.failure)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    """Inline code that holds any backticks `text` has."""
    ticks = max((len(run) for run in re.findall(r"`+", text)), default=0) + 1
    fence = "`" * ticks
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _failure_markdown(result: NotebookResult) -> str:
    parts = []
    if result.cell is not None:
        parts.append(f"cell {result.cell}" + (f" {_code(_cell(result.source))}"
                                              if result.source else ""))
    if result.error:
        parts.append(_cell(result.error))
    return ": ".join(parts)


def markdown(report: NotebookReport) -> str:
    """A summary for `$GITHUB_STEP_SUMMARY`: a heading naming the repository and whether
    everything passed, a table of the notebooks, and the traceback tail of each that did
    not."""
    passed = report.count(Status.PASSED)
    mark = "✅" if report.passed else "❌"
    image = "" if report.image == report.target else f" in {_code(report.image)}"
    lines = [f"## {mark} {_cell(report.target)}: {passed} of {len(report.results)} "
             "notebooks passed", "",
             f"`pangeo-binder test`{image}: {report.summary}.", "",
             "| Notebook | Result | Time | First failing cell |",
             "| --- | --- | ---: | --- |"]
    for result in report.results:
        lines.append(f"| {_code(_cell(result.path))} | {_SYMBOL[result.status]} "
                     f"{result.status} | {result.duration:.1f} s | "
                     f"{_failure_markdown(result)} |")
    for result in report.results:
        if result.passed or not result.traceback:
            continue
        body = "\n".join(result.traceback)
        fence = "`" * max(3, max((len(r) for r in re.findall(r"`+", body)), default=0) + 1)
        lines += ["", f"<details><summary>{_cell(result.path)}: "
                      f"{_cell(result.ename or str(result.status))}</summary>", "",
                  f"{fence}text", body, fence, "", "</details>"]
    return "\n".join(lines) + "\n"


def plain_lines(report: NotebookReport) -> list[str]:
    """One line per notebook, for logs: `FAILED   1.1 s  broken.ipynb  cell 3 (...): ...`."""
    return [f"{result.status.upper():<7} {result.duration:7.1f} s  {result.path}"
            + (f"  {result.failure}" if result.failure else "")
            for result in report.results]


def rich_table(report: NotebookReport):
    """The report as a rich Table, for a terminal."""
    from rich.markup import escape
    from rich.table import Table

    style = {Status.PASSED: "bold green", Status.FAILED: "bold red",
             Status.TIMEOUT: "bold yellow", Status.ERROR: "bold magenta"}
    table = Table(title=f"Notebooks of {escape(report.target)}", title_justify="left")
    table.add_column("Notebook")
    table.add_column("Result")
    table.add_column("Time", justify="right")
    table.add_column("First failing cell / error", overflow="fold")
    for result in report.results:
        table.add_row(escape(result.path), f"[{style[result.status]}]{result.status}[/]",
                      f"{result.duration:.1f} s", escape(result.failure))
    return table


def check_writable(*paths: Path | None) -> None:
    """Refuse, before any notebook runs, report files that could not be written."""
    for path in paths:
        refuse_unwritable(path)


def write_reports(report: NotebookReport, junit: Path | None, summary: Path | None) -> None:
    """JUnit XML to `junit` (replaced); the Markdown summary appended to `summary`, as
    GitHub's step summary file expects (several repositories tested in one step each add
    theirs)."""
    try:
        if junit is not None:
            junit.write_text(junit_xml(report), encoding="utf-8")
        if summary is not None:
            with summary.open("a", encoding="utf-8") as handle:
                handle.write(markdown(report))
    except OSError as exc:
        raise NotebookTestError(f"cannot write {exc.filename}: {exc.strerror}") from None
