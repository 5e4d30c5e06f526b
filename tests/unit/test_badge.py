"""Badges and BinderHub's names, through the CLI and the public functions."""

import subprocess
import sys

from pangeo_binder.hub.badge import BinderRepo
from pangeo_binder.spec import parse_source
from tests.helpers.cli import run_cli


def test_badges_use_binderhubs_url_scheme():
    result = run_cli("badge", "gh:pangeo-data/tutorial@v1", "--hub", "https://binder.example.org/",
                     "--open", "notebooks/intro.ipynb")
    assert result.returncode == 0, result.stderr
    url = "https://binder.example.org/v2/gh/pangeo-data/tutorial/v1?urlpath=lab/tree/notebooks/intro.ipynb"
    logo = "https://binder.example.org/badge_logo.svg"
    assert result.stdout.split("\n\n") == [
        f"[![Binder]({logo})]({url})",
        f".. image:: {logo}\n   :target: {url}\n   :alt: Binder",
        f'<a href="{url}"><img src="{logo}" alt="Binder"></a>\n',
    ]


def test_other_git_hosts_use_the_git_provider_and_head_by_default():
    result = run_cli("badge", "https://gitlab.com/org/repo.git", "--hub", "https://h.org",
                     "--format", "markdown")
    assert result.stdout.strip() == ("[![Binder](https://h.org/badge_logo.svg)](https://h.org"
                                     "/v2/git/https%3A%2F%2Fgitlab.com%2Forg%2Frepo.git/HEAD"
                                     "?urlpath=lab)")


def test_image_names_are_binderhubs():
    # BinderHub's own example: prefix + escaped slug + sha256 of the slug + ":" + commit.
    repo = BinderRepo.of(parse_source("gh:binder-examples/requirements"))
    assert repo.image_name("registry.example.com/binder/bh-", "a1b2c3d4e5f6") == (
        "registry.example.com/binder/bh-binder-2dexamples-2drequirements-55ab5c:a1b2c3d4e5f6")


def test_a_local_directory_has_no_badge(tmp_path):
    result = run_cli("badge", str(tmp_path), "--hub", "https://h.org")
    assert result.returncode == 1
    assert result.stderr.strip() == ("pangeo-binder: error: a badge needs a published "
                                     "repository: name it as gh:org/repo or by its git URL")


def test_check_needs_a_registry_prefix():
    result = run_cli("badge", "gh:o/r@0123456789abcdef0123456789abcdef01234567", "--hub",
                     "https://h.org", "--check", "--image-prefix", "binder-")
    assert result.returncode == 1
    assert "names no registry" in result.stderr.strip().splitlines()[-1]


def test_check_without_an_image_prefix_is_one_line():
    result = run_cli("badge", "gh:o/r", "--hub", "https://h.org", "--check",
                     env={"PANGEO_BINDER_IMAGE_PREFIX": ""})
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == ("pangeo-binder: error: --check needs the hub's "
                                     "--image-prefix")


def test_a_badge_without_check_loads_no_registry_client():
    """Printing badges is string work: docker-py (the registry question of --check)
    takes longer to load than the badges take to print."""
    probe = ("import sys\nfrom pangeo_binder.cli import main\n"
             "try:\n    main(['badge', 'gh:org/repo', '--hub', 'https://h.org'])\n"
             "except SystemExit as exit:\n    code = exit.code\n"
             "print('LOADED', sorted(m for m in ('docker', 'requests', 'rich')"
             " if m in sys.modules), code)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=False)
    assert result.stdout.splitlines()[-1] == "LOADED [] 0", result.stderr[-2000:]


def test_the_html_badge_keeps_the_launch_url_exactly():
    """Pasted into a page, the HTML badge links to the launch URL itself, whatever the
    hub's address holds (an `&`, a quote)."""
    from html.parser import HTMLParser

    from pangeo_binder.hub.badge import badges

    launch = 'https://binder.example.org/?a=1&b="x"/v2/gh/org/repo/HEAD?urlpath=lab'
    links = []

    class Links(HTMLParser):
        def handle_starttag(self, tag, attrs):
            links.extend(value for name, value in attrs if name in ("href", "src"))

    Links().feed(badges(launch, 'https://binder.example.org/?a=1&b="x"')["html"])
    assert links == [launch, 'https://binder.example.org/?a=1&b="x"/badge_logo.svg']
