"""Shared by tests/integration/test_corpus.py and benchmarks/corpus.py: which directories
of tests/corpus/ are repositories, and how their notebooks are executed inside a built image."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "corpus"

# `pangeo-binder build` options of the repositories that need some: an environment that
# cannot be rebuilt as written is built on today's stack.
BUILD_OPTIONS = {"pangeo-tutorial-2018": ("--relax",)}

# Run inside the image (through its entrypoint, so a binder/start script wraps it):
# execute each notebook given as an argument with nbconvert, the way a reader's
# "Run All" does, then print what its cells wrote to stdout, so the caller can assert on it.
EXECUTE = r"""
set -e
mkdir -p /tmp/executed
for nb in "$@"; do
    jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=120 \
        --ExecutePreprocessor.kernel_name=python3 --output-dir /tmp/executed "$nb"
done
python - "$@" <<'PY'
import json, os, sys
for nb in sys.argv[1:]:
    with open(os.path.join("/tmp/executed", os.path.basename(nb))) as f:
        executed = json.load(f)
    for cell in executed["cells"]:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                text = out["text"]
                print("".join(text) if isinstance(text, list) else text, end="")
PY
"""


def repositories() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir()
                  if p.is_dir() and not p.name.startswith(("_", ".")))


def notebooks(repo: Path) -> list[str]:
    """The repository's notebooks, relative to its root (the image's working directory)."""
    return sorted(str(p.relative_to(repo)) for p in repo.rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts)


def marker(repo_name: str, notebook: str) -> str:
    """The line a notebook prints last when every cell before it ran."""
    return f"NOTEBOOK OK {repo_name}/{Path(notebook).stem}"


def execute_command(notebooks: list[str]) -> list[str]:
    return ["sh", "-c", EXECUTE, "sh", *notebooks]
