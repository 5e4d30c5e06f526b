"""A resolution's pylock.toml: the requirements lock made from it, and what the image
installs from it (pangeo_binder.builder.pylock)."""

from __future__ import annotations

import tomllib

from pangeo_binder.builder.lock import Lock, marker_environment
from pangeo_binder.builder.pylock import installable, requirements_lock


def file(name: str, digit: str) -> str:
    """A file entry as uv writes it (the hash: 64 times `digit`)."""
    return (f'{{ url = "https://files.pythonhosted.org/packages/aa/bb/{name}", size = 1, '
            f'hashes = {{ sha256 = "{digit * 64}" }} }}')


# As `uv pip compile --format pylock.toml` writes it for a repository with `-e .`, a
# local package, a git requirement and markers.
RESOLUTION = f'''lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.11"

[[packages]]
name = "certifi"
version = "2026.10.19.post1"
marker = "python_full_version < '3.12'"
wheels = [{file("certifi-2026.10.19.post1-py3-none-any.whl", "1")}]

[[packages]]
name = "colorama"
version = "0.4.6"
marker = "sys_platform == 'win32'"
wheels = [{file("colorama-0.4.6-py2.py3-none-any.whl", "2")}]

[[packages]]
name = "mypkg"
directory = {{ path = ".", editable = true }}

[[packages]]
name = "numpy"
version = "2.4.6"
sdist = {file("numpy-2.4.6.tar.gz", "4")}
wheels = [{file("numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl", "3")}]

[[packages]]
name = "subpkg"
directory = {{ path = "pkg" }}

[[packages]]
name = "tutorial-data"
version = "0.1"
vcs = {{ type = "git", url = "http://git.example.org/tutorial-data.git", \
requested-revision = "v0.1", commit-id = "{"c" * 40}" }}
'''


def test_the_requirements_lock_holds_what_the_resolution_chose_for_the_image():
    text = requirements_lock(RESOLUTION, marker_environment("3.11"))
    lock = Lock(text, resolution=RESOLUTION)
    assert lock.pins == {"certifi": "2026.10.19.post1", "numpy": "2.4.6"}
    assert lock.local == ("-e .", "./pkg")
    assert lock.vcs == ("tutorial-data @ git+http://git.example.org/tutorial-data.git@"
                        + "c" * 40,)
    # Every file's hash, sdist and wheel, as uv's own requirements output has them.
    assert (f"numpy==2.4.6 \\\n    --hash=sha256:{'3' * 64} \\\n"
            f"    --hash=sha256:{'4' * 64}\n") in text
    assert "colorama" not in text  # its marker does not hold on Linux
    # Its marker holds only below 3.12: a 3.13 environment has no certifi.
    assert "certifi" not in requirements_lock(RESOLUTION, marker_environment("3.13"))


def test_the_image_installs_the_resolution_s_files_but_not_the_repository_s_own():
    packages = tomllib.loads(installable(RESOLUTION))["packages"]
    assert [p["name"] for p in packages] == ["certifi", "colorama", "numpy"]
    # Each file keeps its URL and hash: the installer needs no index.
    numpy = next(p for p in packages if p["name"] == "numpy")
    assert numpy["wheels"][0]["url"].endswith("manylinux_2_28_x86_64.whl")
    assert numpy["wheels"][0]["hashes"] == {"sha256": "3" * 64}
