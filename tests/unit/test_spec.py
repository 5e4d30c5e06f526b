from pathlib import Path

import pytest

from pangeo_binder.errors import SourceError
from pangeo_binder.spec import GitSource, LocalSource, looks_like_source, parse_source, slug


def test_github_shorthand_with_and_without_ref():
    assert parse_source("gh:pangeo-data/pangeo-tutorial") == GitSource(
        url="https://github.com/pangeo-data/pangeo-tutorial", ref=None,
        display="gh:pangeo-data/pangeo-tutorial")
    source = parse_source("gh:pangeo-data/pangeo-tutorial@v1.2")
    assert source.ref == "v1.2"
    assert parse_source("gh:org/repo.git", ref="main") == GitSource(
        url="https://github.com/org/repo", ref="main", display="gh:org/repo")


@pytest.mark.parametrize("text", ["gh:", "gh:org", "gh:org/", "gh:-org/repo", "gh:org/re po"])
def test_malformed_github_shorthand_is_refused(text):
    with pytest.raises(SourceError, match="gh:org/repo"):
        parse_source(text)


def test_shorthand_ref_and_option_ref_together_are_refused():
    with pytest.raises(SourceError, match="already names a ref"):
        parse_source("gh:org/repo@main", ref="dev")


@pytest.mark.parametrize("url", [
    "https://github.com/org/repo.git", "http://example.org/repo", "file:///srv/git/repo",
    "ssh://git@example.org/org/repo.git", "git@github.com:org/repo.git",
])
def test_git_urls_keep_the_url_and_ref(url):
    assert parse_source(url, ref="v1") == GitSource(url=url, ref="v1", display=url)


def test_unsupported_scheme_is_refused():
    with pytest.raises(SourceError, match="unsupported URL scheme 'ftp'"):
        parse_source("ftp://example.org/repo")


def test_local_directory(tmp_path):
    assert parse_source(str(tmp_path)) == LocalSource(tmp_path.resolve())


def test_local_directory_with_ref_means_that_commit(tmp_path):
    source = parse_source(str(tmp_path), ref="main")
    assert isinstance(source, GitSource)
    assert source.url == tmp_path.resolve().as_uri()
    assert source.ref == "main"


def test_missing_path_and_file_are_refused(tmp_path):
    with pytest.raises(SourceError, match="no such directory"):
        parse_source(str(tmp_path / "nope"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(SourceError, match="is not a directory"):
        parse_source(str(tmp_path / "file"))


@pytest.mark.parametrize("ref", ["a b", "x:y", "main~1", "bad^"])
def test_invalid_refs_are_refused(ref):
    with pytest.raises(SourceError, match="invalid git ref"):
        parse_source("gh:org/repo", ref=ref)


@pytest.mark.parametrize(("text", "expected"), [
    ("gh:Pangeo-Data/Pangeo_Tutorial", "pangeo-data-pangeo-tutorial"),
    ("https://github.com/org/repo.git", "org-repo"),
    ("git@github.com:org/repo.git", "org-repo"),
    ("file:///srv/git/My Repo", "git-my-repo"),
])
def test_slugs_are_docker_safe(text, expected):
    assert slug(parse_source(text)) == expected


def test_local_slug_is_the_directory_name(tmp_path):
    directory = tmp_path / "Ocean Heat!"
    directory.mkdir()
    assert slug(LocalSource(Path(directory))) == "ocean-heat"


def test_launch_tells_sources_from_images(tmp_path):
    for source in ["gh:org/repo", "https://example.org/r.git", "git@github.com:org/r.git",
                   str(tmp_path)]:
        assert looks_like_source(source), source
    for image in ["pangeo-binder/quickstart:0123abcd", "localhost:5000/x/y:1", "python"]:
        assert not looks_like_source(image), image
