"""Where base images live in a registry: names only (the pulls and pushes are in
tests/integration/test_fresh_engine.py)."""

from __future__ import annotations

import pytest

from pangeo_binder.builder.bases import registry_directory, shared_name
from pangeo_binder.builder.plan import ImagePlan


@pytest.mark.parametrize(("image", "directory"), [
    # BinderHub's --image: image_prefix + escaped slug + ":" + ref
    ("registry.example.org/binder/pangeo-gh-org-repo-abc:0123abc",
     "registry.example.org/binder/"),
    ("localhost:5000/pangeo-binder-test/quickstart", "localhost:5000/pangeo-binder-test/"),
    ("gcr.io/project/binder-prod-gh-org-repo:v1", "gcr.io/project/"),
    ("registry.example.org/binder-quickstart:v1", "registry.example.org/"),
    ("localhost/a/b:c", "localhost/a/"),
    # No registry host: local names, and Docker Hub's implied one, share nothing.
    ("pangeo-binder/quickstart:abc", None),
    ("quickstart", None),
    ("org/repo:latest", None),
])
def test_the_registry_directory_of_an_image(image, directory):
    assert registry_directory(image) == directory


def test_a_base_is_named_by_its_kind_and_content_tag():
    plan = ImagePlan(image="pangeo-binder/pangeo-notebook:93e293a852600b3b",
                     content_hash="93e293a852600b3b" + "0" * 48, dockerfile="Dockerfile",
                     smoke_test="true")
    assert shared_name(plan, "registry.example.org/binder/") == \
        "registry.example.org/binder/pangeo-binder-base-pangeo-notebook:93e293a852600b3b"
