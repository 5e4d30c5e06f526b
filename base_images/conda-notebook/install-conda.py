"""Install exactly the packages of a conda lock into a prefix, with py-rattler.

    install-conda.py MANIFEST PACKAGES_DIR PREFIX

MANIFEST is the JSON list pangeo-binder writes from conda-lock.yml (file, sha256, md5,
url of each package); PACKAGES_DIR holds those files as fetched from their locked URLs.
Every file is checked against its locked sha256 before anything is linked: rattler does
not check the hash of a local file itself.
"""

import asyncio
import hashlib
import json
import os
import sys
from pathlib import Path

from rattler import IndexJson, PackageRecord, RepoDataRecord, install


def record(entry: dict, packages: Path) -> RepoDataRecord:
    path = packages / entry["file"]
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        sys.exit(f"{entry['file']}: sha256 {digest} is not the locked {entry['sha256']}")
    index = IndexJson.from_package_archive(path)
    package = PackageRecord(
        index.name, index.version, index.build, index.build_number, index.subdir,
        arch=index.arch, platform=index.platform, noarch=index.noarch,
        depends=index.depends, constrains=index.constrains, license=index.license,
        sha256=bytes.fromhex(entry["sha256"]),
        md5=bytes.fromhex(entry["md5"]) if entry["md5"] else None, size=len(data))
    channel = entry["url"].rsplit("/", 2)[0] + "/"
    return RepoDataRecord(package, entry["file"], path.resolve().as_uri(), channel)


def main() -> None:
    manifest, packages, prefix = sys.argv[1:]
    entries = json.loads(Path(manifest).read_text())
    records = [record(entry, Path(packages)) for entry in entries]
    asyncio.run(install(records, prefix, cache_dir=Path("/tmp/rattler-cache"),
                        show_progress=False, execute_link_scripts=False))
    print(f"installed {len(records)} conda packages into {prefix}", flush=True)
    # py-rattler's runtime can crash the interpreter's teardown: skip it.
    os._exit(0)


if __name__ == "__main__":
    main()
