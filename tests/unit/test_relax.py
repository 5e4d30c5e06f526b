"""`build --relax`: which pins an old environment loses, what the build and the image
say of it, and the one line of an environment that cannot be rebuilt as written. None
of these reach Docker (tests/integration/test_old_tutorial.py builds one)."""

from dataclasses import replace

import pytest

from pangeo_binder.builder import lock as locks
from pangeo_binder.builder.conda_pypi import PypiTranslation, translate
from pangeo_binder.builder.fetch import checkout
from pangeo_binder.builder.kinds import choose, detect
from pangeo_binder.builder.kinds.conda import CondaEnvironment
from pangeo_binder.builder.kinds.conda_via_pypi import CondaViaPyPI
from pangeo_binder.builder.kinds.pip import PipEnvironment
from pangeo_binder.builder.lock import BASE_PYTHON, Lock, PipInputs, load_base_lock
from pangeo_binder.builder.relax import (
    RELAX_OPTION,
    DroppedPin,
    cannot_rebuild,
    drop_all,
    drop_conflicts,
    dropped_pins,
    label,
    summary,
    unpinned,
)
from pangeo_binder.errors import BinderConfigError
from pangeo_binder.events import ignore
from pangeo_binder.spec import parse_source
from pangeo_binder.yaml_file import load_yaml
from tests.helpers.cli import run_cli
from tests.helpers.repos import write_tree

BASE = load_base_lock()
OLD_ENVIRONMENT = """\
name: pangeo-tutorial-2018
channels:
  - conda-forge
dependencies:
  - python=3.6
  - numpy=1.15
  - xarray=0.10.8
  - dask=0.19
  - pandas=0.23
  - matplotlib=2.2
  - netcdf4
  - zarr=2.2
  - cmocean
"""


def old_translation() -> PypiTranslation:
    translation = translate(load_yaml(OLD_ENVIRONMENT, "environment.yml", BinderConfigError),
                            "binder/environment.yml")
    assert isinstance(translation, PypiTranslation)
    return translation


def translated_text(translation: PypiTranslation) -> tuple[str, dict[str, str]]:
    return ("".join(f"{line}\n" for line in translation.requirements),
            {pip: conda for conda, pip in translation.mapped})


def test_pins_that_conflict_with_the_base_are_dropped_and_named_as_written():
    text, written = translated_text(old_translation())
    relaxed, dropped = drop_conflicts(text, BASE.pins, "binder/environment.yml", written)
    assert relaxed.splitlines() == ["numpy", "xarray", "dask[complete]", "pandas",
                                    "matplotlib", "netCDF4", "zarr", "cmocean"]
    assert [pin.written for pin in dropped] == [
        "numpy=1.15", "xarray=0.10.8", "dask=0.19", "pandas=0.23", "matplotlib=2.2",
        "zarr=2.2"]
    assert dropped[0] == DroppedPin("numpy", "numpy=1.15",
                                    f"the Pangeo base pins {BASE.pins['numpy']}")


def test_only_what_conflicts_goes_first():
    """A pin the base satisfies, and a package the base does not pin, keep their
    versions in the first step."""
    text = (f"xarray>={BASE.pins['xarray']}\nnumpy<2\nxhistogram==0.3.2\n"
            "-e .\n# a comment\n")
    relaxed, dropped = drop_conflicts(text, BASE.pins, "binder/requirements.txt")
    assert relaxed.splitlines() == [f"xarray>={BASE.pins['xarray']}", "numpy",
                                    "xhistogram==0.3.2", "-e .", "# a comment"]
    assert [(pin.package, pin.written) for pin in dropped] == [("numpy", "numpy<2")]


def test_the_second_step_drops_every_version_but_keeps_names_extras_and_markers():
    text = ("xhistogram==0.3.2  # the binning helper\n"
            "dask[array,diagnostics]>=2019.1\n"
            "pywin32==300; sys_platform == 'win32'\n"
            "tqdm; python_version >= '3.8'\n"
            "cftime<2 ; python_version >= '3'\n"
            "intake\n"
            "git+https://github.com/org/pkg@v1#egg=pkg\n"
            "--extra-index-url https://example.org/simple\n")
    relaxed, dropped = drop_all(text)
    assert relaxed.splitlines() == [
        "xhistogram", "dask[array,diagnostics]",
        "pywin32==300; sys_platform == 'win32'",  # not for this platform: as written
        "tqdm; python_version >= '3.8'",
        'cftime; python_version >= "3"',
        "intake", "git+https://github.com/org/pkg@v1#egg=pkg",
        "--extra-index-url https://example.org/simple"]
    assert [pin.written for pin in dropped] == [
        "xhistogram==0.3.2", "dask[array,diagnostics]>=2019.1", "cftime<2 ; python_version >= '3'"]


@pytest.mark.parametrize("line, expected", [
    ("numpy==1.15.*", "numpy"), ("dask[complete]==0.19.*", "dask[complete]"),
    ("numpy", None), ("pkg @ https://example.org/pkg-1.0.tar.gz", None), ("-e .", None),
])
def test_unpinned(line, expected):
    assert unpinned(line) == expected


def relaxed_lock(dropped: list[DroppedPin]) -> Lock:
    """A lock as a relaxed resolution writes it: the records, then the pins."""
    records = "".join(f"{pin.record()}\n" for pin in dropped)
    pins = "".join(f"{name}=={BASE.pins[name]}\n"
                   for name in ("numpy", "xarray", "dask", "pandas", "matplotlib", "zarr"))
    return Lock(f"# header\n# exact versions and hashes for Python {BASE_PYTHON} on x\n"
                f"{records}{pins}")


def old_dropped() -> list[DroppedPin]:
    text, written = translated_text(old_translation())
    python = DroppedPin("python", "python=3.6", f"the Pangeo base runs Python {BASE_PYTHON}")
    return [python, *drop_conflicts(text, BASE.pins, "binder/environment.yml", written)[1]]


def test_the_summary_is_one_line_naming_each_pin_and_its_new_version():
    lock = relaxed_lock(old_dropped())
    assert [pin.written for pin in dropped_pins(lock)][:2] == ["python=3.6", "numpy=1.15"]
    line = summary("binder/environment.yml", lock)
    assert "\n" not in line
    assert line.startswith(
        f"Notice: --relax dropped 7 pins of binder/environment.yml: python=3.6 (now "
        f"{BASE_PYTHON}), numpy=1.15 (now {BASE.pins['numpy']}), xarray=0.10.8 (now "
        f"{BASE.pins['xarray']}), ")
    assert " and 2 more; built on the Pangeo base (label pangeo-binder.relaxed" in line


def test_the_label_lists_every_dropped_pin():
    value = label(relaxed_lock(old_dropped()))
    assert value.startswith(f"python=3.6 -> {BASE_PYTHON}, numpy=1.15 -> "
                            f"{BASE.pins['numpy']}, ")
    assert value.endswith(f"zarr=2.2 -> {BASE.pins['zarr']}")
    assert len(value.split(", ")) == 7


def test_an_unrelaxed_lock_has_no_dropped_pins():
    assert dropped_pins(BASE) == ()
    assert summary("binder/requirements.txt", BASE).startswith(
        "Notice: --relax dropped no pin of binder/requirements.txt")


def test_a_relaxed_lock_is_cached_under_another_key():
    """A relaxed resolution must never be taken for the file's own, nor the other way:
    its records are part of the text the cache key is made of."""
    from pangeo_binder.builder.relax import _relaxed_inputs

    text = "numpy\nxarray\n"
    inputs = PipInputs(name="binder/requirements.txt", text=text,
                       files=["binder/requirements.txt"], extra={})
    relaxed = _relaxed_inputs(inputs, text, [DroppedPin("python", "python-3.13", "base")])
    assert relaxed.text.startswith("# --relax dropped python: python-3.13 (base)\n")
    assert relaxed.replaced == {"binder/requirements.txt": relaxed.text}
    assert relaxed.python == BASE_PYTHON
    assert locks._cache_key(relaxed.text, BASE, False) != locks._cache_key(text, BASE, False)
    nothing = _relaxed_inputs(replace(inputs, extra={"environment-yml.in": text}), text, [])
    assert nothing.extra == {"environment-yml.in": text}  # nothing dropped: the same


def test_cannot_rebuild_is_one_line_with_what_was_tried_and_the_way_out():
    error = cannot_rebuild(
        "binder/environment.yml", "python=3.6",
        "binder/environment.yml asks for numpy=1.15 but the Pangeo base pins numpy "
        "==2.4.6; use a range that includes 2.4.6, or drop the pin",
        ["numpy=1.15", "pandas=0.23"])
    message = str(error)
    assert "\n" not in message
    assert message == (
        "binder/environment.yml cannot be rebuilt as written: python=3.6 is no Python the "
        "PyPI path builds (3.10 to 3.15), and the conda path failed: binder/environment.yml "
        "asks for numpy=1.15 but the Pangeo base pins numpy ==2.4.6; numpy=1.15, "
        "pandas=0.23 have no wheel on PyPI for Python 3.10 to 3.15; "
        f"`{RELAX_OPTION}` builds it on today's Pangeo base, keeping its package names "
        "and dropping the pins that cannot be met")


def kind_of(tmp_path, files: dict[str, str], relax: bool):
    repo = write_tree(tmp_path / "repo", files)
    with checkout(parse_source(str(repo)), ignore) as fetched:
        return choose(detect(fetched, BASE_PYTHON), fetched, ignore, relax)


def test_relax_takes_an_old_environment_to_the_base_python(tmp_path):
    files = {"binder/environment.yml": OLD_ENVIRONMENT}
    kind = kind_of(tmp_path, files, relax=False)
    assert isinstance(kind, CondaEnvironment) and kind.as_pypi is not None
    kind = kind_of(tmp_path, files, relax=True)
    assert isinstance(kind, CondaViaPyPI) and kind.python == BASE_PYTHON and kind.relax


def test_relax_leaves_a_conda_only_environment_to_conda(tmp_path):
    files = {"binder/environment.yml": "dependencies: [python=3.6, esmpy]\n"}
    assert isinstance(kind_of(tmp_path, files, relax=True), CondaEnvironment)


def test_relax_on_requirements_uses_the_base_python(tmp_path):
    kind = kind_of(tmp_path, {"runtime.txt": "python-3.13\n", "requirements.txt": "numpy\n"},
                   relax=True)
    assert isinstance(kind, PipEnvironment) and kind.relax


@pytest.mark.parametrize("env, args", [
    ({}, ["--relax", "--strict-base"]),
    ({"PANGEO_BINDER_STRICT_BASE": "1"}, ["--relax"]),
    ({"PANGEO_BINDER_RELAX": "1"}, ["--strict-base"]),
])
def test_relax_and_strict_base_together_are_one_line(tmp_path, env, args):
    repo = write_tree(tmp_path / "repo", {"requirements.txt": "numpy==1.15.4\n"})
    result = run_cli("build", *args, str(repo), env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "pangeo-binder: error: --relax and --strict-base ask for opposite things (drop the "
        "pins that move the Pangeo base, or refuse them): choose one (settings "
        "PANGEO_BINDER_RELAX, PANGEO_BINDER_STRICT_BASE)"]


def test_cannot_rebuild_says_when_the_wheels_could_not_be_checked():
    message = str(cannot_rebuild("environment.yml", "python=3.9", "cannot read the channels",
                                 [], unchecked="Docker is not running"))
    assert "the conda path failed: cannot read the channels; its pins' wheels could not be " \
           "checked (Docker is not running); `pangeo-binder build --relax`" in message


def test_a_relaxed_runtime_txt_alone_is_resolved_for_its_record():
    """runtime.txt python-3.13 and no requirements: the lock holds only the record, so
    the image is labelled too."""
    from pangeo_binder.builder.relax import _relaxed_inputs

    inputs = PipInputs(name="runtime.txt", text="", files=[], extra={}, python="3.13")
    relaxed = _relaxed_inputs(inputs, "", [DroppedPin("python", "python-3.13", "base")])
    assert relaxed.extra == {"relaxed.in": relaxed.text} and relaxed.python == BASE_PYTHON


def test_relax_reads_a_runtime_txt_python_no_source_has(tmp_path):
    repo = write_tree(tmp_path / "repo", {"runtime.txt": "python-3.6\n",
                                          "requirements.txt": "numpy==1.15.4\n"})
    with checkout(parse_source(str(repo)), ignore) as fetched:
        with pytest.raises(BinderConfigError, match=r"python-3\.6, which no source has"):
            detect(fetched, BASE_PYTHON)
        assert detect(fetched, BASE_PYTHON, relax=True).python_version == "3.6"


def test_relax_leaves_a_committed_lock_and_refuses_its_unbuildable_python(tmp_path):
    repo = write_tree(tmp_path / "repo", {
        "binder/runtime.txt": "python-3.6\n",
        "binder/pangeo-binder.lock": f"numpy=={BASE.pins['numpy']}\n"})
    result = run_cli("lock", "--relax", str(repo))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "pangeo-binder: error: binder/runtime.txt asks for python-3.6, which no source has, "
        "and --relax leaves binder/pangeo-binder.lock as it is (it relaxes requirements "
        "files and environment.yml)"]
