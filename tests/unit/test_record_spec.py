"""Spelling records, gl: and gist: sources, and their badges in BinderHub's URL forms."""

from __future__ import annotations

import pytest

from pangeo_binder.errors import SourceError
from pangeo_binder.spec import GitSource, RecordSource, looks_like_source, parse_source, slug
from tests.helpers.cli import run_cli

HUB = "https://h.org"
HYDRO = "b8f6eae9d89241cf8b5904033460af61"


@pytest.mark.parametrize(("text", "provider", "spec"), [
    ("10.5281/zenodo.3242074", "zenodo", "10.5281/zenodo.3242074"),
    ("doi:10.5281/zenodo.3242074", "zenodo", "10.5281/zenodo.3242074"),
    ("https://doi.org/10.5281/zenodo.3242074", "zenodo", "10.5281/zenodo.3242074"),
    ("https://dx.doi.org/10.6084/m9.figshare.9782777.v1", "figshare",
     "10.6084/m9.figshare.9782777.v1"),
    ("10.7910/DVN/TJCLKP", "dataverse", "10.7910/DVN/TJCLKP"),
    ("10.1234/some.thing", None, "10.1234/some.thing"),
    ("zenodo:10.5281/zenodo.3242074", "zenodo", "10.5281/zenodo.3242074"),
    ("figshare:10.6084/m9.figshare.9782777.v1", "figshare", "10.6084/m9.figshare.9782777.v1"),
    ("dataverse:10.7910/DVN/TJCLKP", "dataverse", "10.7910/DVN/TJCLKP"),
    (f"hydroshare:{HYDRO}", "hydroshare", f"https://www.hydroshare.org/resource/{HYDRO}"),
    ("ckan:https://demo.ckan.org/dataset/sample", "ckan", "https://demo.ckan.org/dataset/sample"),
    ("https://zenodo.org/record/3242074", "zenodo", "https://zenodo.org/record/3242074"),
    ("https://zenodo.org/records/3242074", "zenodo", "https://zenodo.org/records/3242074"),
    ("https://sandbox.zenodo.org/records/12", "zenodo", "https://sandbox.zenodo.org/records/12"),
    ("https://figshare.com/articles/code/binder-examples/9784088/2", "figshare",
     "https://figshare.com/articles/code/binder-examples/9784088/2"),
    (f"https://www.hydroshare.org/resource/{HYDRO}/", "hydroshare",
     f"https://www.hydroshare.org/resource/{HYDRO}/"),
    ("https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.7910/DVN/TJCLKP",
     "dataverse", "https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.7910/DVN/TJCLKP"),
    ("https://demo.ckan.org/dataset/sample", "ckan", "https://demo.ckan.org/dataset/sample"),
    ("swh:1:dir:" + "a" * 40, "swh", "swh:1:dir:" + "a" * 40),
    ("swh:1:rev:" + "b" * 40, "swh", "swh:1:rev:" + "b" * 40),
])
def test_each_record_spelling(text, provider, spec):
    source = parse_source(text)
    assert isinstance(source, RecordSource)
    assert (source.provider, source.spec) == (provider, spec)
    assert looks_like_source(text)


@pytest.mark.parametrize(("text", "message"), [
    ("zenodo:3242074", "expected zenodo:DOI"),
    ("hydroshare:nope", "hydroshare:RESOURCE_ID"),
    ("ckan:demo.ckan.org/sample", "ckan:https://HOST/dataset/NAME"),
    ("swh:1:cnt:" + "c" * 40, "only directory and revision SWHIDs"),
])
def test_malformed_record_spellings_are_refused(text, message):
    with pytest.raises(SourceError, match=message):
        parse_source(text)
    assert not looks_like_source(text)  # e.g. an image named ckan:latest


def test_a_record_has_no_git_ref():
    with pytest.raises(SourceError, match="has no git ref"):
        parse_source("10.5281/zenodo.1", ref="main")


def test_git_urls_stay_git_urls():
    # A forge's path may hold a /dataset/ segment; a .git URL is always git.
    for url in ("https://gitlab.com/group/dataset/project", "https://h.example/dataset/x.git",
                "https://github.com/org/repo"):
        assert isinstance(parse_source(url), GitSource), url


def test_gitlab_shorthand_points_at_the_gitlab_host(monkeypatch):
    assert parse_source("gl:group/sub/project@v1") == GitSource(
        url="https://gitlab.com/group/sub/project.git", ref="v1",
        display="gl:group/sub/project")
    monkeypatch.setenv("PANGEO_BINDER_GITLAB_HOSTNAME", "gitlab.example.org")
    assert parse_source("gl:g/p.git", ref="main").url == "https://gitlab.example.org/g/p.git"
    monkeypatch.setenv("PANGEO_BINDER_GITLAB_HOSTNAME", "http://127.0.0.1:8080")
    assert parse_source("gl:g/p").url == "http://127.0.0.1:8080/g/p.git"


def test_gist_shorthand():
    assert parse_source("gist:someone/0a1b2c3d@HEAD") == GitSource(
        url="https://gist.github.com/someone/0a1b2c3d.git", ref="HEAD",
        display="gist:someone/0a1b2c3d")


@pytest.mark.parametrize("text", ["gl:", "gl:project", "gl:group/", "gl:g/../p", "gl:g/ p",
                                  "gist:user", "gist:user/not-hex!"])
def test_malformed_git_shorthands_are_refused(text):
    with pytest.raises(SourceError, match=r"expected (gl:group|gist:user)"):
        parse_source(text)


def test_slugs_name_the_record():
    assert slug(parse_source("10.5281/zenodo.3242074")) == "zenodo-3242074"
    assert slug(parse_source("gl:Group/Sub/Project")) == "group-sub-project"
    assert slug(parse_source("dataverse:10.7910/DVN/TJCLKP")) == "dataverse-tjclkp"


@pytest.mark.parametrize(("text", "path"), [
    ("10.5281/zenodo.3242074", "/v2/zenodo/10.5281/zenodo.3242074/"),
    ("https://zenodo.org/records/3242074", "/v2/zenodo/10.5281/zenodo.3242074/"),
    ("figshare:10.6084/m9.figshare.9782777.v1", "/v2/figshare/10.6084/m9.figshare.9782777.v1/"),
    ("https://figshare.com/articles/code/binder-examples/9784088/2",
     "/v2/figshare/10.6084/m9.figshare.9784088.v2/"),
    (f"https://www.hydroshare.org/resource/{HYDRO}", f"/v2/hydroshare/{HYDRO}/"),
    ("https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.7910/DVN/TJCLKP",
     "/v2/dataverse/10.7910/DVN/TJCLKP/"),
    ("ckan:https://demo.ckan.org/dataset/sample",
     "/v2/ckan/https%3A%2F%2Fdemo.ckan.org%2Fdataset%2Fsample/"),
    ("gl:group/sub/project@v1.0", "/v2/gl/group%2Fsub%2Fproject/v1.0"),
    ("gl:group/project", "/v2/gl/group%2Fproject/HEAD"),
    ("gist:someone/0a1b2c3d@abc123", "/v2/gist/someone/0a1b2c3d/abc123"),
])
def test_badges_in_binderhubs_url_forms(text, path):
    result = run_cli("badge", text, "--hub", HUB, "--format", "markdown", "--open", "intro.ipynb")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"[![Binder]({HUB}/badge_logo.svg)]({HUB}{path}"
                                     "?urlpath=lab/tree/intro.ipynb)")


@pytest.mark.parametrize(("text", "message"), [
    ("swh:1:dir:" + "a" * 40, "BinderHub has no Software Heritage provider"),
    ("10.1234/some.thing", "spell it zenodo:DOI, figshare:DOI or dataverse:DOI"),
])
def test_records_binderhub_cannot_launch_have_no_badge(text, message):
    result = run_cli("badge", text, "--hub", HUB)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("pangeo-binder: error: ")
    assert message in result.stderr
