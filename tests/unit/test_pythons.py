"""Where a requested Python comes from: the OS image's Debian suite, another suite's OS
image, then uv's managed Python; and that the source names the image."""

import pytest

from pangeo_binder.builder.plan import python_image_plan
from pangeo_binder.builder.pythons import PYTHON_LABEL, os_suite, python_source
from pangeo_binder.settings import DEBIAN_PYTHONS, DEFAULT_PYTHON_OS_IMAGES, Settings


def settings(monkeypatch, os_image="", python_os_images=""):
    monkeypatch.setenv("PANGEO_BINDER_OS_IMAGE", os_image)
    monkeypatch.setenv("PANGEO_BINDER_PYTHON_OS_IMAGES", python_os_images)
    return Settings.from_env()


@pytest.mark.parametrize("image, suite", [
    ("debian:bookworm-slim", "bookworm"),
    ("debian:trixie-20261101-slim", "trixie"),
    ("debian:12", "bookworm"),
    ("debian:unstable-slim", "sid"),
    ("pangeo-binder/debian:sid-minbase", "sid"),
    ("registry.example.org:5000/mirror/debian:trixie", "trixie"),
    ("debian", None),  # latest: whatever Debian's stable is that day
    ("localhost:5000/debian", None),
    ("ubuntu:24.04", None),
    ("myorg/base:bookworm", None),
    ("debian:buster-slim", None),  # a suite whose Pythons are not listed
])
def test_the_suite_of_an_os_image_is_read_from_debian_names_only(image, suite):
    assert os_suite(image) == suite


def test_each_default_os_image_is_the_first_suite_that_packages_its_python():
    first = {}
    for suite, versions in DEBIAN_PYTHONS.items():
        for version in versions:
            first.setdefault(version, f"debian:{suite}-slim")
    assert first == DEFAULT_PYTHON_OS_IMAGES


def test_by_default_pythons_come_from_debian_suites_then_from_uv(monkeypatch):
    config = settings(monkeypatch)
    found = {v: python_source(config, v) for v in ("3.10", "3.11", "3.12", "3.13", "3.14",
                                                     "3.15")}
    assert {v: (s.os_image, s.managed) for v, s in found.items()} == {
        "3.10": ("debian:bookworm-slim", True),
        "3.11": ("debian:bookworm-slim", False),  # the OS image's own suite
        "3.12": ("debian:bookworm-slim", True),
        "3.13": ("debian:trixie-slim", False),
        "3.14": ("debian:sid-slim", False),
        "3.15": ("debian:sid-slim", False),
    }
    assert found["3.14"].describe() == "python3.14 from Debian sid"
    assert found["3.12"].describe() == "3.12 from uv's managed Python"
    assert found["3.14"].setting == "PANGEO_BINDER_PYTHON_OS_IMAGES=3.14=IMAGE"


def test_the_os_images_own_suite_comes_first(monkeypatch):
    config = settings(monkeypatch, os_image="pangeo-binder/debian:sid-minbase")
    assert python_source(config, "3.14").os_image == "pangeo-binder/debian:sid-minbase"
    assert python_source(config, "3.13").os_image == "pangeo-binder/debian:sid-minbase"
    # sid has no 3.11: the Pangeo base's Python comes from bookworm.
    assert python_source(config, "3.11").os_image == "debian:bookworm-slim"


def test_an_os_image_named_otherwise_is_taken_for_the_bases_python(monkeypatch):
    config = settings(monkeypatch, os_image="registry.example.org/os:2026")
    base = python_source(config, "3.11")
    assert (base.os_image, base.managed, base.suite) == ("registry.example.org/os:2026",
                                                         False, None)
    assert base.describe() == "python3.11 from the OS image's apt"
    assert python_source(config, "3.14").os_image == "debian:sid-slim"


def test_the_setting_names_the_os_image_of_a_python(monkeypatch):
    config = settings(monkeypatch, os_image="pangeo-binder/debian:bookworm-minbase",
                      python_os_images="3.14=pangeo-binder/debian:sid-minbase, "
                                       "3.15=pangeo-binder/debian:sid-minbase")
    assert python_source(config, "3.14").os_image == "pangeo-binder/debian:sid-minbase"
    assert python_source(config, "3.13").os_image == "debian:trixie-slim"
    assert python_source(config, "3.11").os_image == "pangeo-binder/debian:bookworm-minbase"


def test_the_source_is_in_the_content_hash_build_arguments_and_label():
    debian = python_image_plan("debian:sid-slim", "sha256:os", "3.14")
    managed = python_image_plan("debian:sid-slim", "sha256:os", "3.14", managed=True)
    assert debian.content_hash != managed.content_hash
    assert debian.build_args == {"OS_IMAGE": "debian:sid-slim", "DEBIAN_PYTHON": "3.14"}
    assert managed.build_args == {"OS_IMAGE": "debian:sid-slim", "MANAGED_PYTHON": "3.14"}
    assert debian.labels == {PYTHON_LABEL: "python3.14 from Debian sid"}
    assert managed.labels == {PYTHON_LABEL: "3.14 from uv's managed Python"}
    assert "not 3.14" in debian.smoke_test


def test_the_same_request_names_the_same_image_whatever_the_os_image_is_called():
    # The OS image counts by its id: a local name for the same image changes nothing.
    assert (python_image_plan("debian:sid-slim", "sha256:os", "3.15").image
            == python_image_plan("pangeo-binder/debian:sid-minbase", "sha256:os", "3.15").image)
