"""Workshop files: what organisers write, and one clear line for each mistake."""

from datetime import UTC, datetime

import pytest

from pangeo_binder.spec import GitSource, LocalSource
from pangeo_binder.workshop.config import Seats, WorkshopError, load_workshop
from tests.helpers.cli import run_cli
from tests.helpers.repos import write_tree

GOOD = """\
name: tutorial
image_prefix: registry.example.org/workshop/
repos:
  - gh:pangeo-data/tutorial@v1
  - source: https://example.org/extra.git
    ref: main
images: [registry.example.org/other:1]
nodes:
  selector: {pool: users}
  tolerations: [{key: dedicated, operator: Equal, value: user, effect: NoSchedule}]
seats: {count: 5, cores: 500m, memory: 1Gi}
until: 2026-11-23T18:00:00Z
"""


HEAD = "name: w\nimage_prefix: r/\nrepos: [gh:o/r]\n"


def workshop_file(tmp_path, text):
    return write_tree(tmp_path, {"workshop.yaml": text}) / "workshop.yaml"


def test_a_full_workshop_file(tmp_path):
    workshop = load_workshop(workshop_file(tmp_path, GOOD))
    assert workshop.name == "tutorial" and workshop.namespace == "pangeo-prewarm-tutorial"
    assert [(s.url, s.ref) for s in workshop.repos if isinstance(s, GitSource)] == [
        ("https://github.com/pangeo-data/tutorial", "v1"),
        ("https://example.org/extra.git", "main")]
    assert workshop.images == ("registry.example.org/other:1",)
    assert workshop.node_selector == {"pool": "users"}
    assert workshop.tolerations[0]["effect"] == "NoSchedule"
    assert workshop.seats == Seats(count=5, cores="500m", memory="1Gi")
    assert workshop.until == datetime(2026, 11, 23, 18, tzinfo=UTC)
    assert workshop.expired(datetime(2026, 11, 24, tzinfo=UTC))
    assert not workshop.expired(datetime(2026, 11, 22, tzinfo=UTC))


def test_relative_directories_are_relative_to_the_file(tmp_path, monkeypatch):
    (tmp_path / "repo").mkdir()
    text = "name: w\nimage_prefix: r/\nrepos: [../repo]\n"
    path = write_tree(tmp_path / "plans", {"w.yaml": text})
    monkeypatch.chdir("/")
    assert load_workshop(path / "w.yaml").repos == (LocalSource((tmp_path / "repo").resolve()),)


def test_local_repositories_and_defaults(tmp_path):
    (tmp_path / "repo").mkdir()
    workshop = load_workshop(workshop_file(
        tmp_path, f"name: w\nimage_prefix: r/\nrepos: [{tmp_path / 'repo'}]\n"))
    assert workshop.repos == (LocalSource(tmp_path / "repo"),)
    assert workshop.seats.count == 0 and workshop.until is None


@pytest.mark.parametrize(("text", "message"), [
    ("name: [", "line 1: not valid YAML"),
    ("- a\n- b\n", "the workshop file must be a mapping"),
    ("image_prefix: r/\nrepos: [gh:o/r]\n", "'name' is required"),
    ("name: Bad_Name\nimage_prefix: r/\nrepos: [gh:o/r]\n",
     "line 1: name 'Bad_Name' must be a DNS label"),
    ("name: w\nimage_prefix: r/\n", "name at least one repository"),
    (f"{HEAD}seat: {{count: 2}}\n", "line 4: unknown key 'seat'"),
    ("name: w\nimage_prefix: r/\nrepos:\n  - gh:nope\n",
     "line 4: repos[0]: invalid GitHub shorthand"),
    (f"{HEAD}seats: {{count: -1}}\n", "seats.count must be a whole number"),
    (f"{HEAD}seats: {{cores: lots}}\n", "invalid seats.cores 'lots'"),
    (f"{HEAD}until: tomorrow\n", "line 4: until 'tomorrow' is not a date"),
    (f"{HEAD}nodes: {{tolerations: [{{kee: x}}]}}\n", "unknown key 'kee'"),
])
def test_mistakes_get_one_clear_line(tmp_path, text, message):
    path = workshop_file(tmp_path, text)
    with pytest.raises(WorkshopError) as error:
        load_workshop(path)
    assert str(error.value).startswith(str(path))
    assert message in str(error.value)


def test_the_cli_says_it_in_one_line(tmp_path):
    path = workshop_file(tmp_path, "name: w\nimage_prefix: r/\n")
    for command in (["build", "--from", str(path)], ["prewarm", str(path)],
                    ["prewarm", "status", str(path)], ["prewarm", "stop", str(path)]):
        result = run_cli(*command)
        assert result.returncode == 1, command
        assert result.stderr.strip().splitlines() == [
            f"pangeo-binder: error: {path} line 1: name at least one repository (repos) or "
            "image (images)"]
    missing = run_cli("prewarm", "status", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "no such workshop file" in missing.stderr


def test_build_wants_a_source_or_a_workshop(tmp_path):
    result = run_cli("build")
    assert result.returncode == 2
    assert "name a SOURCE, or a workshop file with --from" in result.stderr
