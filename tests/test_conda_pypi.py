"""environment.yml -> PyPI: the curated table and conda's match-spec rules, translated
exactly; everything that cannot be translated faithfully stays conda-only, with a reason."""

from __future__ import annotations

import textwrap

import pytest
from packaging.requirements import Requirement

from pangeo_binder.build.conda_pypi import (
    CondaOnly,
    PypiTranslation,
    load_table,
    lock_header_lines,
    parse_table,
    table_path,
    translate,
)
from pangeo_binder.errors import BinderConfigError
from pangeo_binder.yaml_file import load_yaml

SQUATTED = ("snappy", "proj", "geos", "blosc", "tk", "liblapack")


def environment(text: str) -> dict:
    return load_yaml(textwrap.dedent(text), "environment.yml", BinderConfigError)


def translated(*dependencies: object, channels=("conda-forge",)) -> PypiTranslation:
    result = translate({"channels": list(channels), "dependencies": list(dependencies)},
                       "binder/environment.yml")
    assert isinstance(result, PypiTranslation), result
    return result


def refused(*dependencies: object, channels=("conda-forge",)) -> CondaOnly:
    result = translate({"channels": list(channels), "dependencies": list(dependencies)},
                       "binder/environment.yml")
    assert isinstance(result, CondaOnly), result
    return result


def one(spec: str) -> str:
    (requirement,) = translated(spec).requirements
    return requirement


# A Pangeo tutorial's binder/environment.yml, as such repositories write them.
TUTORIAL = """\
    name: pangeo-tutorial
    channels:
      - conda-forge
      - nodefaults
    dependencies:
      - python=3.9
      - numpy=1.22
      - xarray >=2025.7,<2026
      - dask=2022.5.0
      - distributed
      - netcdf4
      - matplotlib-base
      - cartopy
      - hvplot
      - dask-labextension
      - nodejs
      - graphviz
      - python-graphviz
      - pip
      - pip:
          - -e .
          - git+https://github.com/pangeo-data/xbatcher.git@main
          - --index-url https://pypi.org/simple
          - rechunker==0.5.2
    """


def test_a_tutorial_environment_translates_in_order_with_pip_lines_verbatim():
    result = translate(environment(TUTORIAL), "binder/environment.yml")
    assert isinstance(result, PypiTranslation)
    assert result.requirements == (
        "numpy==1.22.*", "xarray>=2025.7,<2026", "dask[complete]==2022.5.0.*",
        "distributed", "netCDF4", "matplotlib", "cartopy", "hvplot", "dask-labextension",
        "graphviz",
        "-e .", "git+https://github.com/pangeo-data/xbatcher.git@main",
        "--index-url https://pypi.org/simple", "rechunker==0.5.2")
    assert result.pip == result.requirements[-4:]
    assert result.python == "3.9"
    assert result.python_spec == "python=3.9"
    assert result.python_specifier == "==3.9.*"
    assert result.apt_packages == ("graphviz",)
    assert result.from_debian == (("graphviz", "graphviz"),)
    assert result.dropped == ("nodejs", "pip")
    assert ("netcdf4", "netCDF4") in result.mapped
    assert ("numpy=1.22", "numpy==1.22.*") in result.mapped
    assert len(result.mapped) == 10
    for line in result.requirements[:-4]:
        Requirement(line)


def test_the_notice_is_one_line_naming_renames_drops_and_debian():
    result = translate(environment(TUTORIAL), "binder/environment.yml")
    assert result.notice() == (
        "binder/environment.yml is installed from PyPI: dask -> dask[complete], "
        "netcdf4 -> netCDF4, matplotlib-base -> matplotlib, python-graphviz -> graphviz; "
        "nodejs, pip dropped; graphviz from Debian")
    assert "\n" not in result.notice()


def test_the_notice_of_an_unchanged_environment():
    assert translated("xarray", "zarr").notice() == (
        "binder/environment.yml is installed from PyPI: same names")


def test_lock_header_records_every_translation():
    result = translate(environment(TUTORIAL), "binder/environment.yml")
    lines = lock_header_lines(result)
    assert all(line.startswith("#") and "\n" not in line for line in lines)
    text = "\n".join(lines)
    assert "binder/environment.yml" in lines[0]
    assert "#   python=3.9 -> Python 3.9" in lines
    assert "#   netcdf4 -> netCDF4" in lines
    assert "#   numpy=1.22 -> numpy==1.22.*" in lines
    assert "#   graphviz -> Debian package graphviz" in lines
    assert "#   nodejs: dropped" in lines
    assert "4 line(s)" in text


@pytest.mark.parametrize(("spec", "requirement"), [
    ("numpy", "numpy"),
    ("numpy *", "numpy"),
    # conda's single '=' is a prefix match (conda rewrites =1.22 to 1.22*).
    ("numpy=1.22", "numpy==1.22.*"),
    ("numpy=1.22.4", "numpy==1.22.4.*"),
    ("dask-core=2022.5.0", "dask==2022.5.0.*"),
    ("numpy=1.22.*", "numpy==1.22.*"),
    ("numpy=1.22*", "numpy==1.22.*"),
    # '==' is exact; a leading '==' before a star pattern is conda's prefix match.
    ("numpy==1.22.4", "numpy==1.22.4"),
    ("numpy==1.22.*", "numpy==1.22.*"),
    # A bare version is conda's exact match; a starred one a prefix match.
    ("numpy 1.22", "numpy==1.22"),
    ("numpy 1.22.*", "numpy==1.22.*"),
    ("numpy 1.22*", "numpy==1.22.*"),
    # Conjunctions, with or without spaces.
    ("numpy>=1.2,<2", "numpy>=1.2,<2"),
    ("numpy >=1.2,<2", "numpy>=1.2,<2"),
    ("numpy >= 1.2, < 2", "numpy>=1.2,<2"),
    ("xarray >=2025.7,<2026", "xarray>=2025.7,<2026"),
    ("numpy=1.22,<2", "numpy==1.22.*,<2"),
    ("numpy >=1.20.*", "numpy>=1.20"),
    ("numpy !=1.22.*", "numpy!=1.22.*"),
    ("numpy ~=1.22.0", "numpy~=1.22.0"),
    ("numpy>1.2", "numpy>1.2"),
    # An 'or' whose alternatives agree is expressible.
    ("numpy 1.22.*|=1.22", "numpy==1.22.*"),
    # Channel prefixes of the table's channels are removed.
    ("conda-forge::xarray", "xarray"),
    ("defaults::xarray >=2024", "xarray>=2024"),
    ("conda-forge/linux-64::xarray", "xarray"),
    # A bracket giving only a version.
    ("numpy[version='>=1.2']", "numpy>=1.2"),
    ('numpy[version=">=1.2,<2"]', "numpy>=1.2,<2"),
    # A build string of '*' is any build.
    ("numpy=1.22=*", "numpy==1.22.*"),
    # Renamed projects keep their version.
    ("netcdf4=1.6", "netCDF4==1.6.*"),
    ("pytables >=3.7", "tables>=3.7"),
    ("cf_xarray", "cf-xarray"),
    ("geoviews-core", "geoviews"),
    ("jupyterhub-singleuser==5.2.1", "jupyterhub==5.2.1"),
])
def test_match_specs(spec, requirement):
    assert one(spec) == requirement
    Requirement(requirement)


@pytest.mark.parametrize(("spec", "why"), [
    ("numpy=1.22=py39_0", "build string py39_0"),
    ("numpy==1.22.4=py39h5d0ccc0_0", "build string py39h5d0ccc0_0"),
    ("numpy 1.22 py39*", "build string py39*"),
    ("numpy[build=py39_0]", "[build=...]"),
    ("numpy[version='>=1.2', build=py39_0]", "[build=...]"),
    ("numpy[channel=bioconda]", "[channel=...]"),
    ("numpy 1.21.*|1.22.*", "'or'"),
    ("numpy >=1.2|<1.0", "'or'"),
    ("numpy (>=1.2,<2)|1.0", "no PEP 440 form"),
    ("numpy 1.*.3", "no PEP 440 form"),
    ("openssl 1.1.1k_x", "not in the conda-to-PyPI table"),
    ("numpy 1.2.3_1", "not a PEP 440 version"),
    ("bioconda::xarray", "channel bioconda"),
    ("numpy>=", "not a conda package spec"),
])
def test_untranslatable_specs_are_conda_only(spec, why):
    result = refused(spec)
    assert len(result.reasons) == 1
    assert why in result.reasons[0]
    assert spec.split("[")[0].split()[0].split("::")[-1].split("=")[0] in result.reasons[0]


@pytest.mark.parametrize("name", SQUATTED)
def test_squatted_and_c_library_names_are_never_sent_to_pypi(name):
    result = refused("xarray", name)
    assert result.reasons == (f"{name} has no faithful PyPI equivalent "
                              f"({load_table().conda_only[name]})",)
    # With a version or build string too.
    assert "no faithful PyPI equivalent" in refused(f"{name}=1.2=h123_0").reasons[0]


def test_the_table_never_lists_squatted_names_as_pypi_projects():
    table = load_table()
    pypi_names = {Requirement(target).name.lower() for target in table.pypi.values()}
    for name in SQUATTED:
        assert name not in table.pypi
        assert name not in pypi_names
        assert name in table.conda_only
    # Programs whose PyPI namesakes are other software go to Debian, not PyPI.
    assert table.debian["graphviz"] == "graphviz"
    assert table.pypi["python-graphviz"] == "graphviz"
    assert "pandoc" not in table.pypi
    assert "xesmf" not in table.pypi and "esmpy" not in table.pypi


def test_the_table_is_sorted_and_each_name_in_one_section():
    table = load_table()
    sections = (table.pypi, table.debian, table.dropped, table.conda_only)
    for section in sections:
        assert list(section) == sorted(section)
    names = [name for section in sections for name in section]
    assert len(names) == len(set(names))
    assert table.pypi["dask"] == "dask[complete]"  # conda-forge's dask is the metapackage
    assert table.pypi["dask-core"] == "dask"
    for name in ("xarray", "distributed", "zarr", "numpy", "pandas", "scipy",
                 "intake", "fsspec", "jupyterlab", "dask-kubernetes", "nbgitpuller"):
        assert table.pypi[name] == name
    assert table.pypi["netcdf4"] == "netCDF4"
    assert table.pypi["pytables"] == "tables"
    assert table.pypi["matplotlib-base"] == "matplotlib"
    assert set(table.dropped) >= {"nodejs", "nomkl", "pip"}


def test_the_table_ships_beside_the_environments():
    assert table_path().name == "conda-to-pypi.yaml"
    assert table_path().parent.name == "environments"
    assert table_path().is_file()


def test_a_name_not_in_the_table_is_refused_not_guessed():
    result = refused("xarray", "some-conda-only-thing >=1")
    assert result.reasons == ("some-conda-only-thing is not in the conda-to-PyPI table (a "
                              "conda-forge name is never assumed to be the PyPI project of "
                              "that name)",)


def test_every_reason_is_collected_and_the_notice_is_one_line():
    result = refused("snappy", "numpy=1.22=py39_0", "xarray", "tk",
                     channels=("conda-forge", "bioconda"))
    assert len(result.reasons) == 4
    assert result.reasons[0] == "packages from channel bioconda have no PyPI equivalent"
    notice = result.notice()
    assert notice.startswith("binder/environment.yml cannot be installed from PyPI: ")
    assert "\n" not in notice
    assert "snappy has no faithful PyPI equivalent" in notice


@pytest.mark.parametrize("channel", ["bioconda", "https://conda.example.org/private",
                                     "pyviz"])
def test_other_channels_are_conda_only(channel):
    result = refused("xarray", channels=("conda-forge", channel))
    assert result.reasons == (f"packages from channel {channel} have no PyPI equivalent",)


@pytest.mark.parametrize("channels", [(), ("conda-forge", "nodefaults"), ("defaults",),
                                      ("https://conda.anaconda.org/conda-forge/",)])
def test_conda_forge_defaults_and_nodefaults_are_fine(channels):
    assert translated("xarray", channels=channels).requirements == ("xarray",)


@pytest.mark.parametrize(("spec", "python", "specifier"), [
    ("python=3.9", "3.9", "==3.9.*"),
    ("python==3.11.*", "3.11", "==3.11.*"),
    ("python=3.11.4", "3.11", "==3.11.4.*"),
    ("python 3.10", "3.10", "==3.10"),
    ("python >=3.10,<3.11", "3.10", ">=3.10,<3.11"),
    ("python>=3.10", None, ">=3.10"),
    ("python=3", None, "==3.*"),
    ("python", None, ""),
    ("python=2.7", "2.7", "==2.7.*"),
])
def test_python_is_the_minor_it_pins(spec, python, specifier):
    result = translated(spec, "xarray")
    assert result.requirements == ("xarray",)
    assert (result.python, result.python_spec, result.python_specifier) == (
        python, spec, specifier)
    assert f"#   {spec} -> Python {python or 'any'}" in lock_header_lines(result)


def test_no_python_spec():
    result = translated("xarray")
    assert (result.python, result.python_spec, result.python_specifier) == (None, None, "")


@pytest.mark.parametrize("spec", ["python=3.9=h12debd9_0_cpython", "python >=4",
                                  "python 3.1.*|3.9.*"])
def test_untranslatable_python_is_conda_only(spec):
    (reason,) = refused(spec, "xarray").reasons
    assert reason.startswith(f"{spec}: ")


def test_dropped_names_whatever_their_spec():
    result = translated("nodejs >=18", "nomkl", "pip=23", "nodejs=20=h1234_0", "xarray")
    assert result.dropped == ("nodejs >=18", "nomkl", "pip=23", "nodejs=20=h1234_0")
    assert result.requirements == ("xarray",)
    assert result.notice().endswith("nodejs >=18, nomkl, pip=23, nodejs=20=h1234_0 dropped")


def test_debian_programs():
    result = translated("ffmpeg", "graphviz", "conda-forge::graphviz", "pandoc", "xarray")
    assert result.apt_packages == ("ffmpeg", "graphviz", "pandoc")
    assert result.requirements == ("xarray",)
    assert result.notice().endswith(": ffmpeg, graphviz, pandoc from Debian")
    # Debian decides the version: a pinned program cannot be honoured.
    (reason,) = refused("ffmpeg=6.1").reasons
    assert reason.startswith("ffmpeg=6.1: ffmpeg comes from Debian")


def test_comments_and_numbers_in_dependencies():
    result = translate(environment("""\
        dependencies:
          - "numpy=1.22  # the tutorial's version"
          - pip:
              - rechunker
              - 1
        """), "environment.yml")
    assert isinstance(result, PypiTranslation)
    assert result.requirements == ("numpy==1.22.*", "rechunker", "1")


def test_repeated_specs_keep_their_order():
    assert translated("numpy", "xarray", "numpy>=1.2").requirements == (
        "numpy", "xarray", "numpy>=1.2")


@pytest.mark.parametrize(("data", "message"), [
    (["xarray"], "expected a mapping"),
    ({"channels": ["conda-forge"]}, "no dependencies"),
    ({"dependencies": []}, "no dependencies"),
    ({"dependencies": [{"conda": ["x"]}]}, "neither a conda spec nor a pip: section"),
    ({"dependencies": ["xarray", {"pip": "rechunker"}]}, "pip: section must be a list"),
    ({"channels": "conda-forge", "dependencies": ["xarray"]}, "channels must be a list"),
])
def test_malformed_environments_raise_one_line(data, message):
    with pytest.raises(BinderConfigError, match=message) as info:
        translate(data, "binder/environment.yml")
    assert str(info.value).startswith("binder/environment.yml: ")


@pytest.mark.parametrize(("text", "message"), [
    ("pypi: {}\ndebian: {}\ndropped: {}\n", "expected the sections"),
    ("pypi: {a: a}\ndebian: {}\ndropped: {}\nconda-only: {a: x}\n", "a is in both"),
    ("pypi: {a: 'a>=1'}\ndebian: {}\ndropped: {}\nconda-only: {}\n", "not a PyPI name"),
    ("pypi: {}\ndebian: {a: 'A B'}\ndropped: {}\nconda-only: {}\n", "not a Debian package"),
])
def test_a_broken_table_is_refused(text, message):
    with pytest.raises(BinderConfigError, match=message):
        parse_table(text)


def test_another_table_can_be_given():
    table = parse_table("pypi: {snappy: python-snappy}\ndebian: {}\ndropped: {}\n"
                        "conda-only: {}\n")
    result = translate({"dependencies": ["snappy"]}, table=table)
    assert isinstance(result, PypiTranslation)
    assert result.requirements == ("python-snappy",)
