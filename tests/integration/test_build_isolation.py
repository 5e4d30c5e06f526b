"""One repository's build cannot reach the next one's: its code never runs with write
access to a cache that other repositories' builds read.

Plays the attacker: a repository whose setup.py (run by the image build, as the
repository's own package is installed) writes a file into every cache and mounted
folder it can reach; then another repository's build looks for that file wherever
its own setup.py runs."""

from __future__ import annotations

import uuid

from tests.helpers.cli import run_cli
from tests.helpers.engine import sh
from tests.helpers.repos import write_tree

MARKER = "pangeo-binder-planted-by-another-build"
# Where a build's code could leave something for the next build: every mount of the
# build step, the user's caches (uv's among them) and the temporary folders.
PLACES = f'''
import os

def places():
    found = {{os.path.expanduser("~/.cache"), os.path.expanduser("~/.cache/uv"), "/tmp",
              "/var/tmp", os.environ.get("UV_CACHE_DIR") or "/tmp"}}
    with open("/proc/self/mountinfo") as mounts:
        found |= {{line.split()[4] for line in mounts}}
    for top in sorted(found):
        for root, dirs, _ in os.walk(top):
            yield root
            if root.count("/") - top.count("/") >= 2 or root.startswith(("/proc", "/sys")):
                dirs.clear()

MARKER = {MARKER!r}
'''

WRITER = PLACES + '''
planted = 0
for place in places():
    try:
        with open(os.path.join(place, MARKER), "w") as out:
            out.write("planted")
        planted += 1
    except OSError:
        pass
print(f"planted in {planted} places")

from setuptools import setup
setup(name="cache-writer", version="0.1", py_modules=[])
'''

READER = PLACES + '''
for place in places():
    if os.path.exists(os.path.join(place, MARKER)):
        raise SystemExit(f"found another build's file in {place}")

from setuptools import setup
setup(name="cache-reader", version="0.1", py_modules=[])
'''


def test_a_repository_s_build_cannot_plant_files_for_the_next_repository(docker_engine,
                                                                         tmp_path):
    run = uuid.uuid4().hex
    writer = write_tree(tmp_path / "writer", {
        "setup.py": WRITER, "README.md": f"{run}\n",
        "requirements.txt": "xhistogram\n"})
    reader = write_tree(tmp_path / "reader", {
        "setup.py": READER, "README.md": f"{run}\n",
        "requirements.txt": "xhistogram\n"})

    written = run_cli("build", str(writer))
    assert written.returncode == 0, written.stderr[-3000:]
    # The writer's code did run in its build, and could write somewhere.
    assert MARKER in sh(docker_engine, written.stdout.strip(),
                        "ls -a ~/.cache ~/.cache/uv /tmp 2>/dev/null")

    read = run_cli("build", str(reader))
    assert read.returncode == 0, read.stderr[-3000:]
    assert "found another build's file" not in read.stderr
