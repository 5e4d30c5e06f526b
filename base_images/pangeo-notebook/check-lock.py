"""Compare what is installed in this environment with its locks.

Run by the smoke test of every pip image with the lock files it carries: a package a
lock pins at one version but installed at another (a postBuild's `pip install -U`, say)
fails the build, naming both versions. Packages the locks do not name (a postBuild may
add some) are allowed. Standard library only, so it runs in any environment.
"""

import re
import sys
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
