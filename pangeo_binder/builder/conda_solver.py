"""The conda solve, run by py-rattler in a child process.

    python -m pangeo_binder.builder.conda_solver < request.json > result.json

py-rattler 0.28's async runtime can crash the interpreter as it exits (a segfault or an
abort once in a few dozen runs, after a failed channel read more often), so the solve
runs here and this process leaves with os._exit, skipping interpreter teardown. The
request is {"specs", "urls", "subdirs", "virtual_packages", "cache_dir"}; the answer is
{"records": [...]} or {"error": "solve"|"channels", "message": ...}.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys


def _record(record) -> dict:
    return {"name": record.name.normalized, "version": str(record.version),
            "build": str(record.build), "url": record.url, "depends": list(record.depends),
            "sha256": record.sha256.hex() if record.sha256 else None,
            "md5": record.md5.hex() if record.md5 else ""}


def solve(request: dict) -> dict:
    import rattler
    from rattler import BuildString, Channel, Gateway, GenericVirtualPackage, PackageName
    from rattler.exceptions import GatewayError, SolverError

    virtual = [GenericVirtualPackage(PackageName(name), rattler.Version(version),
                                     BuildString(build))
               for name, version, build in request["virtual_packages"]]
    gateway = Gateway(cache_dir=request["cache_dir"])
    try:
        records = asyncio.run(rattler.solve(
            [Channel(url) for url in request["urls"]], request["specs"], gateway=gateway,
            platforms=request["subdirs"], virtual_packages=virtual))
    except SolverError as exc:
        return {"error": "solve", "message": str(exc)}
    except GatewayError as exc:
        return {"error": "channels", "message": str(exc)}
    return {"records": [_record(record) for record in records]}


def main() -> None:
    try:
        answer = solve(json.load(sys.stdin))
    except Exception as exc:  # reported by the parent as an internal error
        answer = {"error": "internal", "message": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
