"""Fetching real git repositories (file:// remotes) and local directories."""

import os
from pathlib import Path

import pytest

from pangeo_binder.builder.fetch import checkout, local_tree_id
from pangeo_binder.errors import SourceError
from pangeo_binder.events import ignore
from pangeo_binder.spec import parse_source
from tests.helpers.repos import git, git_repo, write_tree


@pytest.fixture
def remote(tmp_path):
    """main: two commits; tag v1 (annotated) on the first; branch dev on the second."""
    root = git_repo(tmp_path / "remote", {"README.md": "one\n", "binder/requirements.txt": ""})
    git(root, "tag", "-a", "v1", "-m", "v1")
    first = git(root, "rev-parse", "HEAD")
    (root / "README.md").write_text("two\n")
    git(root, "commit", "--quiet", "-am", "second")
    git(root, "branch", "dev")
    return root, first, git(root, "rev-parse", "HEAD")


@pytest.mark.parametrize(("ref", "which"), [
    (None, "second"), ("main", "second"), ("dev", "second"), ("v1", "first"),
    ("refs/tags/v1", "first"),
])
def test_refs_resolve_to_the_right_commit(remote, ref, which):
    root, first, second = remote
    with checkout(parse_source(root.as_uri(), ref), ignore) as files:
        assert files.revision == {"first": first, "second": second}[which]
        assert (files.path / "README.md").read_text() == ("one\n" if which == "first" else "two\n")
        assert files.files == ("README.md", "binder/requirements.txt")


def test_full_and_abbreviated_shas(remote):
    root, first, _ = remote
    for ref in (first, first[:8]):
        with checkout(parse_source(root.as_uri(), ref), ignore) as files:
            assert files.revision == first


def test_only_one_commit_is_fetched(remote):
    root, _, second = remote
    with checkout(parse_source(root.as_uri()), ignore) as files:
        assert git(files.path, "rev-list", "--count", "HEAD") == "1"
        fetched = files.tree_id
    # The clean working tree of the same commit has the same identity.
    with checkout(parse_source(str(root)), ignore) as files:
        assert files.revision == second and files.tree_id == fetched


def test_unknown_ref_and_unreachable_repo_are_clear_errors(remote, tmp_path):
    root, _, _ = remote
    with (pytest.raises(SourceError, match="ref 'nope' not found"),
          checkout(parse_source(root.as_uri(), "nope"), ignore)):
        pass
    with (pytest.raises(SourceError, match="cannot read"),
          checkout(parse_source((tmp_path / "missing").as_uri()), ignore)):
        pass


def test_fetched_copy_is_removed_afterwards(remote, tmp_path, monkeypatch):
    root, _, _ = remote
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    with checkout(parse_source(root.as_uri()), ignore) as files:
        assert files.path.is_relative_to(scratch)
    with (pytest.raises(SourceError),
          checkout(parse_source(root.as_uri(), "nope"), ignore)):
        pass
    assert list(scratch.iterdir()) == []


def test_local_checkout_ships_what_git_would_commit(tmp_path):
    root = git_repo(tmp_path / "repo", {".gitignore": "*.nc\n", "a.ipynb": "{}",
                                        "binder/apt.txt": "nco\n"})
    write_tree(root, {"big.nc": "data", "new.ipynb": "{}"})
    with checkout(parse_source(str(root)), ignore) as files:
        assert files.files == (".gitignore", "a.ipynb", "binder/apt.txt", "new.ipynb")
        assert files.revision == git(root, "rev-parse", "HEAD") + "-dirty"
        assert files.path == root


def test_local_identity_follows_uncommitted_changes(tmp_path):
    root = git_repo(tmp_path / "repo", {"a.ipynb": "{}"})

    def identity():
        with checkout(parse_source(str(root)), ignore) as files:
            return files.tree_id, files.revision

    clean = identity()
    assert not clean[1].endswith("-dirty")
    (root / "a.ipynb").write_text('{"cells": []}')
    dirty = identity()
    assert dirty[0] != clean[0] and dirty[1].endswith("-dirty")
    (root / "a.ipynb").write_text("{}")
    assert identity() == clean
    (root / "a.ipynb").chmod(0o755)
    assert identity()[0] != clean[0]


def test_plain_directory_skips_dot_git_only(tmp_path):
    root = write_tree(tmp_path / "plain", {"a.ipynb": "{}", "data/x.csv": "1",
                                           ".git/config": "not a repo"})
    os.symlink("a.ipynb", root / "link.ipynb")
    with checkout(parse_source(str(root)), ignore) as files:
        assert files.files == ("a.ipynb", "data/x.csv", "link.ipynb")
        assert files.revision is None
        assert Path(files.source_url).name == "plain"


def test_a_rebuild_identifies_a_directory_as_its_checkout_does(tmp_path):
    """A rebuild hashes a directory without reading its commit and remote: it must still
    come to the checkout's own tree id, in a git work tree and outside one, so that the
    image recorded under one is found by the other."""
    repo = git_repo(tmp_path / "repo", {".gitignore": "*.nc\n", "a.ipynb": "{}"})
    write_tree(repo, {"big.nc": "data", "new.ipynb": "{}", "a.ipynb": '{"cells": []}'})
    plain = write_tree(tmp_path / "plain", {"a.ipynb": "{}", "data/x.csv": "1"})
    for root in (repo, plain):
        with checkout(parse_source(str(root)), ignore) as files:
            assert local_tree_id(root) == files.tree_id
