"""`verify --sbom FILE`: the image's software bill of materials, in CycloneDX JSON.

What a scanner or an auditor reads of a notebook image: one component per installed
package (its purl, and its package file's hashes where known), under the image itself
with its provenance labels (source, revision, creation time, pangeo-binder's version
and lock hashes) and what `verify` found. Written with cyclonedx-python-lib, the
CycloneDX project's own library, which also validates documents against the schema.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..errors import PangeoBinderError
from . import refuse_unwritable
from .verify import Ecosystem, Package, Verification

if TYPE_CHECKING:
    from cyclonedx.model.bom import Bom

SPEC_VERSION = "1.6"


def purl(package: Package) -> str:
    """pkg:pypi/NAME@VERSION, or pkg:conda/NAME@VERSION?build=...&channel=...&subdir=..."""
    from packageurl import PackageURL

    if package.ecosystem is Ecosystem.PYPI:
        return PackageURL(type="pypi", name=package.name, version=package.version).to_string()
    qualifiers = {"build": package.build} if package.build else {}
    if package.url:
        parts = urllib.parse.urlsplit(package.url).path.rstrip("/").split("/")
        if len(parts) >= 3:
            qualifiers.update(channel=parts[-3], subdir=parts[-2])
        qualifiers["type"] = "conda" if package.url.endswith(".conda") else "tar.bz2"
    return PackageURL(type="conda", name=package.name, version=package.version,
                      qualifiers=qualifiers).to_string()


def _name_and_version(ref: str) -> tuple[str, str]:
    """repository and tag (or digest) of an image reference."""
    if "@" in ref:
        name, _, version = ref.partition("@")
        return name, version
    if ":" in ref.rsplit("/", 1)[-1]:
        name, _, version = ref.rpartition(":")
        return name, version
    return ref, "latest"


def _oci_purl(repo_digest: str):
    """pkg:oci/NAME@sha256:...?repository_url=REPOSITORY, from a registry's digest."""
    from packageurl import PackageURL

    repository, _, digest = repo_digest.partition("@")
    return PackageURL(type="oci", name=repository.rsplit("/", 1)[-1], version=digest,
                      qualifiers={"repository_url": repository})


def make_bom(result: Verification) -> Bom:
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    properties = [Property(name=key, value=value) for key, value in result.provenance.items()]
    properties += [Property(name="pangeo-binder:image-id", value=result.image_id),
                   *(Property(name="pangeo-binder:repo-digest", value=digest)
                     for digest in result.repo_digests),
                   Property(name="pangeo-binder:environment", value=result.environment),
                   Property(name="pangeo-binder:verify", value=result.summary)]
    name, version = _name_and_version(result.image)
    digest = result.image_id.removeprefix("sha256:")
    image = Component(
        type=ComponentType.CONTAINER, name=name, version=version, bom_ref=result.image_id,
        properties=properties, hashes=[HashType(alg=HashAlgorithm.SHA_256, content=digest)],
        purl=_oci_purl(result.repo_digests[0]) if result.repo_digests else None,
    )
    bom = Bom()
    bom.metadata.component = image
    bom.metadata.tools.components.add(Component(type=ComponentType.APPLICATION,
                                                name="pangeo-binder", version=__version__))
    components = []
    refs: set[str] = set()
    for package in result.packages:
        ref = purl(package)
        while ref in refs:  # two records of one package (a broken environment)
            ref += "#"
        refs.add(ref)
        hashes = [HashType(alg=HashAlgorithm.SHA_256, content=package.sha256)] \
            if package.sha256 else []
        if package.md5:
            hashes.append(HashType(alg=HashAlgorithm.MD5, content=package.md5))
        component = Component(
            type=ComponentType.LIBRARY, name=package.name, version=package.version,
            purl=PackageURL.from_string(purl(package)), bom_ref=ref, hashes=hashes,
            properties=[Property(name="pangeo-binder:locked",
                                 value="true" if package.locked else "false")],
        )
        bom.components.add(component)
        components.append(component)
    bom.register_dependency(image, components)
    return bom


def sbom_json(result: Verification) -> str:
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion

    return make_outputter(make_bom(result), OutputFormat.JSON,
                          SchemaVersion.from_version(SPEC_VERSION)).output_as_string(indent=2)


def check_writable(path: Path | None) -> None:
    """Before any work: the SBOM's directory exists and the library is installed."""
    if path is None:
        return
    refuse_unwritable(path, "the SBOM to ")
    try:
        import cyclonedx  # noqa: F401
    except ImportError:
        raise PangeoBinderError("--sbom needs cyclonedx-python-lib: "
                                "pip install 'pangeo-binder[sbom]'") from None


def write_sbom(result: Verification, path: Path) -> None:
    text = sbom_json(result)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PangeoBinderError(f"cannot write the SBOM to {path}: {exc.strerror}") from None
