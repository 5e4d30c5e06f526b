"""environment.yml -> PyPI: the curated table over conda-forge's mapping, and conda's
match-spec rules, translated exactly; everything that cannot be translated faithfully
stays conda-only, with a reason; a `conda env export` loses its C libraries and build
strings, counted in one notice line."""

from __future__ import annotations

import json
import re
import textwrap
from datetime import date

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pangeo_binder.builder.conda_pypi import (
    CondaOnly,
    PypiTranslation,
    is_export,
    load_mapping,
    load_table,
    lock_header_lines,
    mapping_path,
    parse_table,
    table_path,
    translate,
)
from pangeo_binder.errors import BinderConfigError
from pangeo_binder.resources import environment_dir
from pangeo_binder.yaml_file import load_yaml
from tests.helpers.cli import REPO_ROOT, run_cli
from tests.helpers.repos import write_tree

SQUATTED = ("snappy", "proj", "geos", "blosc", "tk", "liblapack")
# A table's sections after pypi, empty.
EMPTY = "debian: {}\ndropped: {}\nc-libraries: {}\nconda-only: {}\n"


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
    # netcdf4 -> netCDF4 is the same PyPI name: not a rename.
    assert result.notice() == (
        "binder/environment.yml is installed from PyPI: dask -> dask[complete], "
        "matplotlib-base -> matplotlib, python-graphviz -> graphviz; "
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
    # A build string of '*' is any build; before a build string, '=1.22' is exact, as
    # conda reads it (MatchSpec('numpy=1.22=*').version is ==1.22).
    ("numpy=1.22=*", "numpy==1.22"),
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
    ("hello 1.1.1k_x", "in neither the conda-to-PyPI table nor conda-forge's mapping"),
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
                              f"({load_table().c_libraries[name]})",)
    # With a version or build string too.
    assert "no faithful PyPI equivalent" in refused(f"{name}=1.2=h123_0").reasons[0]


def test_the_table_never_lists_squatted_names_as_pypi_projects():
    table = load_table()
    pypi_names = {Requirement(target).name.lower() for target in table.pypi.values()}
    for name in SQUATTED:
        assert name not in table.pypi
        assert name not in pypi_names
        assert name in table.c_libraries
    # Programs whose PyPI namesakes are other software go to Debian, not PyPI.
    assert table.debian["graphviz"] == "graphviz"
    assert table.pypi_name("python-graphviz", load_mapping()) == "graphviz"
    assert "pandoc" not in table.pypi
    assert "xesmf" not in table.pypi and "esmpy" not in table.pypi


def test_the_table_is_sorted_and_each_name_in_one_section():
    table = load_table()
    sections = (table.pypi, table.debian, table.dropped, table.c_libraries,
                table.conda_only)
    for section in sections:
        assert list(section) == sorted(section)
    names = [name for section in sections for name in section]
    assert len(names) == len(set(names))
    assert table.pypi["dask"] == "dask[complete]"  # conda-forge's dask is the metapackage
    mapping = load_mapping()
    assert table.pypi_name("dask-core", mapping) == "dask"
    for name in ("xarray", "distributed", "zarr", "numpy", "pandas", "scipy",
                 "intake", "fsspec", "jupyterlab", "dask-kubernetes", "nbgitpuller"):
        assert table.pypi_name(name, mapping) == name
    assert table.pypi_name("netcdf4", mapping) == "netCDF4"
    assert table.pypi_name("pytables", mapping) == "tables"
    assert table.pypi_name("matplotlib-base", mapping) == "matplotlib"
    assert set(table.dropped) >= {"nodejs", "nomkl", "pip"}


def test_the_table_ships_beside_the_environments():
    assert table_path().name == "conda-to-pypi.yaml"
    assert table_path().parent.name == "environments"
    assert table_path().is_file()


def test_a_name_in_neither_the_table_nor_the_mapping_is_refused_not_guessed():
    result = refused("xarray", "some-conda-only-thing >=1", "another-one", "numpy",
                     "some-conda-only-thing")
    assert result.reasons == ("some-conda-only-thing, another-one are in neither the "
                              "conda-to-PyPI table nor conda-forge's mapping (a conda name "
                              "is never assumed to be the PyPI project of that name)",)


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
    assert result.notice().endswith(": nodejs, nomkl, pip dropped")
    assert "#   nodejs=20=h1234_0: dropped" in lock_header_lines(result)


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
    ("pypi: {}\ndebian: {}\ndropped: {}\nconda-only: {}\n", "expected the sections"),
    (f"pypi: {{a: a}}\n{EMPTY}".replace("conda-only: {}", "conda-only: {a: x}"),
     "a is in both"),
    (f"pypi: {{a: 'a>=1'}}\n{EMPTY}", "not a PyPI name"),
    (f"pypi: {{}}\n{EMPTY}".replace("debian: {}", "debian: {a: 'A B'}"),
     "not a Debian package"),
])
def test_a_broken_table_is_refused(text, message):
    with pytest.raises(BinderConfigError, match=message):
        parse_table(text)


def test_another_table_can_be_given():
    table = parse_table(f"pypi: {{snappy: python-snappy}}\n{EMPTY}")
    result = translate({"dependencies": ["snappy"]}, table=table)
    assert isinstance(result, PypiTranslation)
    assert result.requirements == ("python-snappy",)


# conda-forge's mapping, under the table.

def test_the_mapping_ships_beside_the_table_with_its_source_and_licence():
    data = json.loads(mapping_path().read_text(encoding="utf-8"))
    source = data["source"]
    assert source["package"] == "conda-pypi"
    assert source["wheel"] == f"conda_pypi-{source['version']}-py3-none-any.whl"
    assert re.fullmatch(r"[0-9a-f]{64}", source["sha256"])
    assert source["licence"].startswith("MIT, Copyright")
    date.fromisoformat(source["retrieved"])
    licence = mapping_path().with_suffix(".LICENSE").read_text(encoding="utf-8")
    assert "Permission is hereby granted" in licence
    assert mapping_path().parent == table_path().parent  # both ship in the wheel
    assert len(load_mapping()) > 12000
    # What the data could not decide is left out, and says why.
    assert "opencv" not in load_mapping() and "opencv" in data["left_out"]


@pytest.mark.parametrize(("spec", "requirement"), [
    # Names of real environment.yml files that only conda-forge's mapping knows.
    ("six", "six"),
    ("attrs >=23", "attrs>=23"),
    ("tornado", "tornado"),
    ("nbserverproxy", "nbserverproxy"),
    ("sphinx", "sphinx"),
    ("sphinx-copybutton", "sphinx-copybutton"),
    ("typing_extensions", "typing-extensions"),
    ("pytables=3.9", "tables==3.9.*"),
    ("msgpack-python", "msgpack"),
    ("python-graphviz", "graphviz"),
    ("dask-core=2024.2", "dask==2024.2.*"),
    ("matplotlib-base", "matplotlib"),
    # Names it lacks, from the table.
    ("rich", "rich"),
    ("pre-commit", "pre-commit"),
    ("sphinx-book-theme", "sphinx-book-theme"),
    ("pandas", "pandas"),
    ("jsonschema-with-format-nongpl", "jsonschema[format-nongpl]"),
])
def test_names_from_conda_forges_mapping_and_the_table(spec, requirement):
    assert one(spec) == requirement


def test_the_table_wins_over_the_mapping():
    mapping = load_mapping()
    assert mapping["xesmf"] == "xesmf"  # the data would send it to PyPI; it needs ESMF
    (reason,) = refused("xesmf").reasons
    assert reason == f"xesmf has no faithful PyPI equivalent ({load_table().conda_only['xesmf']})"
    assert "dask" not in mapping and one("dask") == "dask[complete]"
    table = parse_table(f"pypi: {{six: six-fork}}\n{EMPTY}")
    assert translate({"dependencies": ["six"]}, table=table).requirements == ("six-fork",)


def test_each_pypi_entry_of_the_table_says_what_the_mapping_does_not():
    mapping = load_mapping()
    for conda_name, target in load_table().pypi.items():
        requirement = Requirement(target)
        assert conda_name not in mapping or requirement.extras or canonicalize_name(
            mapping[conda_name]) != canonicalize_name(requirement.name), (
            f"{conda_name}: conda-forge's mapping says so already; drop it from the table")


def test_a_name_that_differs_only_by_pypi_normalisation_is_not_a_rename():
    result = translated("typing_extensions", "cf_xarray", "netcdf4", "jupyter_core",
                        "pytables", "dask")
    assert result.renamed() == (("pytables", "tables"), ("dask", "dask[complete]"))


def test_the_pangeo_conda_base_translates_from_pypi():
    text = (environment_dir() / "environment.yml").read_text(encoding="utf-8")
    result = translate(environment(text), "environment.yml")
    assert isinstance(result, PypiTranslation), result
    assert "xarray==" + load_yaml(text, "e", BinderConfigError)["dependencies"][4].split(
        "==")[1] in result.requirements


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read conda-forge's conda-to-PyPI mapping"),
    ("{not json", "not a conda-to-PyPI mapping; regenerate it"),
    ("[]", "not a conda-to-PyPI mapping"),
    ('{"mapping": {"a": 1}}', "not a conda-to-PyPI mapping"),
])
def test_a_broken_mapping_is_one_line(tmp_path, content, message):
    path = tmp_path / "conda-pypi-mapping.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BinderConfigError, match=message) as info:
        load_mapping(path)
    assert "\n" not in str(info.value)


# The supply chain: a conda name whose PyPI namesake is another project is never installed
# from PyPI, whether the file is written by hand or exported, whatever its version or
# build, and whatever conda-forge's mapping says of the names the table refuses.

_TABLE = load_table()
REFUSED = sorted({*_TABLE.c_libraries, *_TABLE.conda_only, *_TABLE.debian, *SQUATTED})
# C libraries and build-only packages of real exports that neither the table nor the
# mapping names.
UNMAPPED = ("_libgcc_mutex", "_openmp_mutex", "libxyz", "libgfortran5", "python_abi",
            "font-ttf-ubuntu", "fonts-conda-forge", "gcc_impl_linux-64", "ld_impl_linux-64",
            "libuuid-devel", "xorg-libx11", "lerc", "pthread-stubs", "gflags", "cdo", "nco")


def pypi_projects(result: PypiTranslation | CondaOnly) -> set[str]:
    """The PyPI projects a translation would install."""
    if isinstance(result, CondaOnly):
        return set()
    return {canonicalize_name(Requirement(line).name) for line in result.requirements}


def spellings(name: str) -> list[dict]:
    """`name` in hand-written environment.yml files and in conda env exports."""
    hand = [[name], [f"{name} >=1"], [f"conda-forge::{name}"], [f"{name}=1.0=h1234567_0"]]
    exported = [[f"{name}=1.0=h1234567_0"], [f"{name}=1.0=py311h1234567_0"],
                [f"{name}=1.0=pyhd8ed1ab_0"]]
    return ([{"dependencies": ["xarray", *deps]} for deps in hand]
            + [{"name": "e", "dependencies": ["xarray=2024.2.0=pyhd8ed1ab_0", *deps]}
               for deps in exported]
            + [{"prefix": "/home/ada/envs/e", "dependencies": ["xarray=2024.2.0", *deps]}
               for deps in ([f"{name}=1.0"], [name])])


@pytest.mark.parametrize("name", REFUSED)
def test_supply_chain_refused_names_never_go_to_pypi_whatever_the_mapping_says(name):
    # A mapping that sends the name to its PyPI namesake, as corrupt or tampered data would.
    hostile = {**load_mapping(), name: name}
    for data in spellings(name):
        result = translate({"channels": ["conda-forge"], **data}, table=_TABLE,
                           mapping=hostile)
        assert canonicalize_name(name) not in pypi_projects(result), (data, result)


@pytest.mark.parametrize("name", UNMAPPED)
def test_supply_chain_c_libraries_nothing_maps_never_go_to_pypi(name):
    mapping = load_mapping()
    assert name not in mapping and name not in _TABLE.pypi
    for data in spellings(name):
        result = translate({"channels": ["conda-forge"], **data}, table=_TABLE,
                           mapping=mapping)
        assert canonicalize_name(name) not in pypi_projects(result), (data, result)


# `conda env export`: every package of an environment, pinned with its build.

EXPORT = REPO_ROOT / "tests" / "fixtures" / "xarray-tutorial-export.yml"


def exported() -> PypiTranslation:
    result = translate(environment(EXPORT.read_text(encoding="utf-8")),
                       "binder/environment.yml")
    assert isinstance(result, PypiTranslation), result
    return result


def test_a_conda_env_export_translates_at_its_exact_versions():
    result = exported()
    assert result.export
    assert (result.python, result.python_spec) == ("3.11", "python=3.11.8=hab00c5b_0_cpython")
    assert result.requirements == (
        "bokeh==3.3.4", "certifi==2024.2.2", "cftime==1.6.3", "click==8.1.7",
        "cloudpickle==3.0.0", "dask[complete]==2024.2.1", "dask==2024.2.1",
        "distributed==2024.2.1", "fsspec==2024.2.0", "jupyterlab==4.1.2",
        "matplotlib==3.8.3", "msgpack==1.0.7", "netCDF4==1.6.5", "numpy==1.26.4",
        "pandas==2.2.1", "pooch==1.8.1", "tables==3.9.2", "python-dateutil==2.8.2",
        "graphviz==0.20.1", "pyyaml==6.0.1", "scipy==1.12.0", "toolz==0.12.1",
        "tornado==6.4", "typing-extensions==4.10.0", "xarray==2024.2.0", "zarr==2.17.1",
        "xbatcher==0.3.0")
    assert result.apt_packages == ("graphviz",)
    assert result.dropped == ("nodejs=20.9.0=hb753e55_0", "pip=24.0=pyhd8ed1ab_0")
    dropped = [spec.split("=")[0] for spec in result.build_only]
    assert dropped == [
        "_libgcc_mutex", "_openmp_mutex", "blosc", "bzip2", "c-ares", "ca-certificates",
        "font-ttf-dejavu-sans-mono", "fonts-conda-ecosystem", "hdf4", "hdf5", "icu",
        "keyutils", "krb5", "ld_impl_linux-64", "libblas", "libcurl", "libgcc-ng",
        "libgfortran5", "libnetcdf", "libopenblas", "libsqlite", "libstdcxx-ng", "libzlib",
        "ncurses", "openssl", "python_abi", "readline", "tk", "tzdata", "xz", "yaml", "zlib",
        "zstd"]
    # Every line is accounted for: python, and the pip: section, besides these.
    lines = environment(EXPORT.read_text(encoding="utf-8"))["dependencies"]
    assert len(lines) == 2 + len(result.mapped) + len(result.from_debian) + len(
        result.dropped) + len(result.build_only)


def test_an_exports_notice_is_one_line_that_counts_what_it_drops():
    assert exported().notice() == (
        "binder/environment.yml, a conda env export, is installed from PyPI at its exact "
        "versions, without conda's build strings: dask -> dask[complete], dask-core -> dask, "
        "matplotlib-base -> matplotlib, msgpack-python -> msgpack, pytables -> tables, "
        "python-graphviz -> graphviz; nodejs, pip dropped; 33 C libraries and build-only "
        "packages dropped (the wheels carry their own); graphviz from Debian")


def test_an_exports_lock_header_records_every_package():
    lines = lock_header_lines(exported())
    assert "#   a conda env export: its build strings dropped, its versions exact" in lines
    assert "#   numpy=1.26.4=py311h64a7726_0 -> numpy==1.26.4" in lines
    (dropped,) = [line for line in lines if "C libraries" in line]
    assert dropped.startswith("#   33 C libraries and build-only packages dropped: "
                              "_libgcc_mutex=0.1=conda_forge, ")


def test_an_export_takes_the_pypi_path_with_one_notice_line(tmp_path):
    repo = write_tree(tmp_path / "repo",
                      {"binder/environment.yml": EXPORT.read_text(encoding="utf-8")})
    # No Docker engine: everything up to the sandboxed resolve, then one error line.
    result = run_cli("build", str(repo),
                     env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert result.returncode == 1
    notices = [line for line in result.stderr.splitlines() if "Notice:" in line]
    assert len(notices) == 1 and "33 C libraries and build-only packages dropped" in notices[0]
    assert result.stderr.strip().splitlines()[-1].startswith(
        "pangeo-binder: error: Docker is not running")


@pytest.mark.parametrize(("data", "export"), [
    ({"name": "e", "dependencies": ["numpy=1.26.4=py311h64a7726_0", "zlib=1.2.13=h0_5"]},
     True),
    # `conda env export --no-builds`, its prefix kept.
    ({"prefix": "/home/ada/envs/e", "dependencies": ["numpy=1.26.4", "zlib"]}, True),
    # Hand-written: a build string on some lines only, or no name.
    ({"name": "e", "dependencies": ["numpy=1.26.4=py311h64a7726_0", "xarray"]}, False),
    ({"dependencies": ["numpy=1.26.4=py311h64a7726_0"]}, False),
    ({"name": "e", "dependencies": ["numpy=1.26"]}, False),
])
def test_what_makes_a_conda_env_export(data, export):
    assert is_export(data, data["dependencies"]) is export


def export_of(*dependencies: str, **fields: object) -> PypiTranslation | CondaOnly:
    return translate({"name": "e", "channels": ["conda-forge"],
                      "dependencies": list(dependencies), **fields},
                     "binder/environment.yml")


def test_an_export_keeps_a_python_package_nothing_maps_conda_only():
    result = export_of("xarray=2024.2.0=pyhd8ed1ab_0", "nothing-maps-me=1.0=pyhd8ed1ab_0",
                       "libfoo=1.0=h1234567_0", "nothing-maps-me-either=2.1=py311h1234567_0")
    assert isinstance(result, CondaOnly)
    assert result.reasons == ("nothing-maps-me, nothing-maps-me-either are in neither the "
                              "conda-to-PyPI table nor conda-forge's mapping (a conda name "
                              "is never assumed to be the PyPI project of that name)",)


def test_a_lib_name_the_mapping_knows_is_a_python_package_not_a_library():
    result = export_of("libpysal=4.10=pyhd8ed1ab_0", "libgfortran5=13.2.0=ha4646dd_5")
    assert result.requirements == ("libpysal==4.10",)
    assert result.build_only == ("libgfortran5=13.2.0=ha4646dd_5",)


def test_an_export_refuses_mpi_and_cuda_variants():
    result = export_of("h5py=3.10.0=mpi_mpich_py311h1ce1ab1_101",
                       "netcdf4=1.6.5=nompi_py311he8ad708_100",
                       "pytorch=2.1.0=cuda118_py311h1234567_300")
    assert isinstance(result, CondaOnly)
    assert [reason.split(":")[0] for reason in result.reasons] == [
        "h5py=3.10.0=mpi_mpich_py311h1ce1ab1_101", "pytorch=2.1.0=cuda118_py311h1234567_300"]
    assert "MPI or CUDA variant" in result.reasons[0]


def test_an_export_without_build_strings_drops_c_libraries_by_name():
    result = export_of("python=3.11.8", "xarray=2024.2.0", "libgfortran5=13.2.0",
                       "_libgcc_mutex=0.1", "python_abi=3.11", "proj=9.3.1", "icu=73.2",
                       "graphviz=9.0.0", prefix="/home/ada/envs/e")
    assert isinstance(result, PypiTranslation) and result.export
    # Without a build string, `=2024.2.0` is conda's prefix match.
    assert result.requirements == ("xarray==2024.2.0.*",)
    assert result.build_only == ("libgfortran5=13.2.0", "_libgcc_mutex=0.1", "python_abi=3.11",
                                 "proj=9.3.1", "icu=73.2")
    # An export's program version is what conda installed, not a choice: Debian's.
    assert result.apt_packages == ("graphviz",)
    # A name that looks like nothing in particular stays untranslatable.
    assert isinstance(export_of("xarray=2024.2.0", "lerc=4.0.0", prefix="/p"), CondaOnly)


def test_the_builder_image_carries_the_mapping_and_the_table():
    from pangeo_binder.builder.plan import python_image_plan, service_image_plan

    python = python_image_plan("debian:bookworm-slim", "sha256:" + "0" * 64)
    files = service_image_plan(python, "builder", "debian:bookworm-slim").files
    data = "app/pangeo_binder/_data/environments"
    assert files[f"{data}/conda-pypi-mapping.json"] == mapping_path()
    assert files[f"{data}/conda-pypi-mapping.LICENSE"] == mapping_path().with_suffix(
        ".LICENSE")
    assert files[f"{data}/conda-to-pypi.yaml"] == table_path()
