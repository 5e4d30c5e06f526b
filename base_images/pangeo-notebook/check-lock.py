"""Compare what is installed in this environment with its locks.

Run by the smoke test of every pip image with the lock files it carries: a package a
lock pins at one version but installed at another (a postBuild's `pip install -U`, say)
fails the build, naming both versions. Packages the locks do not name (a postBuild may
add some) are allowed. Standard library only, so it runs in any environment.

    check-lock.py [--import MODULE,...]... LOCK...

Each --import group of modules (the smoke test's xarray and Dask, JupyterLab's app) is
imported in an interpreter of its own, all at once and while the locks are compared:
every second of a smoke test is build time, and the imports are most of it.
"""

import importlib
import re
import subprocess
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


def compare(paths: list[str]) -> int:
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
            traceback.print_exc(file=sys.stdout)
            print(f"cannot import {module}: {type(exc).__name__}: {exc}")
            return 1
    print(f"imports ok: {', '.join(modules)}")
    return 0


def main(args: list[str]) -> int:
    groups = []
    while args[:1] == ["--import"]:
        groups.append(args[1])
        args = args[2:]
    children = [subprocess.Popen([sys.executable, __file__, "--import-here", group],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for group in groups]
    locks_differ = compare(args)
    failed = False
    for child in children:
        output = child.communicate()[0]
        if child.returncode != 0 and not failed:  # its last line is the build's error
            print(output, end="", flush=True)
            failed = True
    return 1 if failed or locks_differ else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--import-here"]:
        sys.exit(imports([m for m in sys.argv[2].split(",") if m]))
    sys.exit(main(sys.argv[1:]))
