"""Compare what is installed in this environment with its locks.

Run by the smoke test of every pip image with the lock files it carries: a package a
lock pins at one version but installed at another (a postBuild's `pip install -U`, say)
fails the build, naming both versions. Packages the locks do not name (a postBuild may
add some) are allowed. Standard library only, so it runs in any environment.

    check-lock.py [--import MODULE,...] LOCK...

--import imports those modules first (the smoke test's xarray, Dask, JupyterLab): one
interpreter for both checks, since every Python start in a smoke test is build time.
"""

import importlib
import re
import sys
import traceback
from importlib.metadata import distributions

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def normal(version: str) -> str:
    # Wheels may spell a version other than the lock does (2024.01.0 vs 2024.1.0).
    return ".".join(part.lstrip("0") or "0" if part.isdigit() else part
                    for part in version.split("."))


def main(paths: list[str]) -> int:
    installed = {canonical(d.metadata["Name"]): d.version for d in distributions()}
    problems = []
    for path in paths:
        with open(path, encoding="utf-8") as lock:
            for line in lock:
                if match := PIN.match(line):
                    name, pinned = canonical(match[1]), match[2]
                    found = installed.get(name)
                    if found is None:
                        problems.append(f"{name}=={pinned} is not installed")
                    elif normal(found) != normal(pinned):
                        problems.append(f"{name} is {found}, the lock pins {pinned}")
    for problem in problems[:-1]:
        print(problem)
    if problems:
        print(f"the installed packages differ from the lock: {problems[-1]}"
              + (f" (and {len(problems) - 1} more, above)" if len(problems) > 1 else ""))
        return 1
    return 0


def imports(modules: list[str]) -> int:
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # any error on import: the environment is broken
            traceback.print_exc()
            print(f"cannot import {module}: {type(exc).__name__}: {exc}")
            return 1
    print(f"imports ok: {', '.join(modules)}")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--import"]:
        if imports([m for m in args[1].split(",") if m]):
            sys.exit(1)
        args = args[2:]
    sys.exit(main(args))
