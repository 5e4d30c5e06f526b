"""An environment.yml installed from PyPI: conda-forge specs translated to pip requirements.

Many notebook repositories carry a conda `environment.yml`. When every dependency has a
faithful PyPI equivalent, the environment is resolved with uv instead of a conda solve
(which needs conda-forge). This module is the pure translation: no network, no Docker.
`translate` returns a `PypiTranslation` (requirement lines, the Python asked for, Debian
packages, what was renamed or dropped) or a `CondaOnly` naming every dependency that
cannot be translated, and why.

Where a conda name goes, in this order (the first that speaks wins):

1. The curated table, environments/conda-to-pypi.yaml: renames that matter for Pangeo
   (`dask` -> `dask[complete]`), names conda-forge's mapping lacks, programs sent to
   Debian (`graphviz`, `ffmpeg`), packages a pip image does not need (`nodejs`, `pip`),
   C libraries (`proj`, `geos`, `hdf5`, `tk`) and conda-only packages (`esmpy`).
2. conda-forge's own mapping of its packages to the PyPI projects they are built from
   (regro's cf-graph, as the conda-pypi package ships it; copied to
   environments/conda-pypi-mapping.json by scripts/update-conda-pypi-mapping).
3. Nothing: the name is not translatable. conda-forge names are a namespace of their
   own; many of its packages are C libraries or programs (`snappy`, `proj`, `geos`,
   `blosc`, `tk`, `xz`, `liblapack`) whose name on PyPI is a Python binding, an unrelated
   project or a squatted name. Installing it would put different software, possibly
   hostile, in the image, so a name is never guessed to be the PyPI project of that name.

A `conda env export` (the file has a `prefix:`, or a `name:` and every dependency is
`name=version=build`) lists every package of the environment, including the C libraries,
compilers' runtimes, fonts and conda markers (`_libgcc_mutex`, `python_abi`) the conda
packages needed; the wheels of the Python packages carry their own. So in an export, a
name the table lists as a C library, or one neither the table nor the mapping sends to
PyPI that looks like such a package (its build string is not a Python build: no
`py311h...`, `pyhd8ed1ab_0`, `py_0`; or its name is `lib*`, `_*`, `font*`, `xorg-*`,
`*-devel`, a compiler, `python_abi`), is dropped, and the notice counts them in one part.
An unknown name with a Python build string stays not translatable. An export's build
strings name conda-forge builds, which a pip image cannot use: they are dropped, and each
package is pinned to its exact version (conda reads `numpy=1.26.4=py311h..._0` as
`numpy ==1.26.4`). A build string naming an MPI or CUDA variant (`mpi_mpich_py311...`,
`cuda118_py311...`) is refused instead: PyPI's wheels do not offer that variant alike.
Outside an export, build strings are refused (a build string chosen by hand often
carries meaning), and a C library named by hand is refused rather than dropped.

Conda's match specs become PEP 440 specifiers by conda's own MatchSpec rules
(pangeo_binder.builder.match_spec).

The `pip:` section's lines are pip's already and are passed through verbatim (`-e .`,
`git+https://...`, `--index-url ...` included). Channels other than conda-forge,
defaults and nodefaults make the environment conda-only. Every translated line is
checked to parse as a packaging Requirement.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import BinderConfigError
from ..resources import data_root
from ..yaml_file import load_yaml
from .match_spec import Untranslatable, one_minor, package_name, parse_match_spec

TABLE_FILENAME = "conda-to-pypi.yaml"
MAPPING_FILENAME = "conda-pypi-mapping.json"
SECTIONS = ("pypi", "debian", "dropped", "c-libraries", "conda-only")
# Channels whose packages the table describes; `nodefaults` only excludes Anaconda's.
PYPI_CHANNELS = frozenset({
    "conda-forge", "defaults", "nodefaults",
    "https://conda.anaconda.org/conda-forge", "http://conda.anaconda.org/conda-forge",
})
_DEBIAN_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
# One line of a `conda env export`: name=version=build.
_EXPORT_LINE = re.compile(r"^[^=\s<>!~,|]+=[^=\s<>!~,|]+=([^=\s<>!~,|]+)$")
# A build string of a package built for a Python: py311h1f0f07a_0, pyhd8ed1ab_0, py_0,
# nompi_py311he8ad708_100, unix_pyh707e725_0. Libraries, programs and data have none.
_PYTHON_BUILD = re.compile(r"(^|_)py(\d|h|_)")
# What an export lists beside the packages asked for: conda's own markers (_libgcc_mutex,
# _openmp_mutex), C/C++ libraries, fonts, X11 libraries, headers, compilers and their
# runtimes, and the Python ABI marker.
_BUILD_ONLY_NAME = re.compile(
    r"^(_|lib|fonts?-|xorg-)"
    r"|(-devel|_linux-64|_linux-aarch64|_linux-ppc64le)$"
    r"|^(python_abi|gcc|gxx|gfortran|clang|clangxx|binutils)(_|$)")


def table_path() -> Path:
    return data_root() / "environments" / TABLE_FILENAME


def mapping_path() -> Path:
    return data_root() / "environments" / MAPPING_FILENAME


@dataclass(frozen=True)
class Table:
    """The curated conda-forge -> PyPI table (environments/conda-to-pypi.yaml)."""

    pypi: Mapping[str, str]  # conda name -> PyPI requirement name, maybe with extras
    debian: Mapping[str, str]  # conda name -> Debian package
    dropped: Mapping[str, str]  # conda name -> why a pip image does not need it
    c_libraries: Mapping[str, str]  # conda name -> why its PyPI namesake is not it
    conda_only: Mapping[str, str]  # conda name -> why PyPI has no faithful equivalent

    def pypi_name(self, conda_name: str, mapping: Mapping[str, str]) -> str | None:
        """The PyPI requirement name of `conda_name`: the table's, else the mapping's
        unless the table sends the name elsewhere; None when neither speaks."""
        if conda_name in self.pypi:
            return self.pypi[conda_name]
        if any(conda_name in section for section in (
                self.debian, self.dropped, self.c_libraries, self.conda_only)):
            return None
        return mapping.get(conda_name)


def parse_table(text: str, name: str = TABLE_FILENAME) -> Table:
    data = load_yaml(text, name, BinderConfigError)
    if not isinstance(data, Mapping) or set(data) != set(SECTIONS):
        raise BinderConfigError(f"{name}: expected the sections {', '.join(SECTIONS)}")
    parsed: dict[str, dict[str, str]] = {}
    seen: dict[str, str] = {}
    for section in SECTIONS:
        entries = data[section] or {}
        if not isinstance(entries, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in entries.items()):
            raise BinderConfigError(f"{name}: {section}: expected conda name: text entries")
        for conda_name in entries:
            if conda_name in seen:
                raise BinderConfigError(f"{name}: {conda_name} is in both {seen[conda_name]} "
                                        f"and {section}")
            seen[conda_name] = section
        parsed[section] = {str(k): str(v).strip() for k, v in entries.items()}
    for conda_name, target in parsed["pypi"].items():
        try:
            requirement = Requirement(target)
        except InvalidRequirement:
            requirement = None
        if requirement is None or str(requirement.specifier) or requirement.marker \
                or requirement.url:
            raise BinderConfigError(f"{name}: pypi: {conda_name}: {target!r} is not a PyPI "
                                    "name (extras allowed, no versions)")
    for conda_name, target in parsed["debian"].items():
        if not _DEBIAN_NAME.match(target):
            raise BinderConfigError(f"{name}: debian: {conda_name}: {target!r} is not a "
                                    "Debian package name")
    return Table(pypi=parsed["pypi"], debian=parsed["debian"], dropped=parsed["dropped"],
                 c_libraries=parsed["c-libraries"], conda_only=parsed["conda-only"])


@cache
def load_table(path: Path | None = None) -> Table:
    """The table shipped with pangeo-binder, or the one at `path`."""
    path = path or table_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BinderConfigError(f"cannot read the conda-to-PyPI table {path}: "
                                f"{exc.strerror}") from None
    return parse_table(text, path.name)


@cache
def load_mapping(path: Path | None = None) -> Mapping[str, str]:
    """conda-forge's conda name -> PyPI name mapping shipped with pangeo-binder, or the
    one at `path` (the "mapping" object of a file scripts/update-conda-pypi-mapping
    writes)."""
    path = path or mapping_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BinderConfigError(f"cannot read conda-forge's conda-to-PyPI mapping {path}: "
                                f"{exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    mapping = data.get("mapping") if isinstance(data, dict) else None
    if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise BinderConfigError(f"{path.name}: not a conda-to-PyPI mapping; regenerate it "
                                "with scripts/update-conda-pypi-mapping")
    return mapping


@dataclass(frozen=True)
class PypiTranslation:
    """An environment.yml that can be installed from PyPI, and what was changed."""

    name: str  # the file, for messages: "binder/environment.yml"
    # PEP 508 lines in the file's order, then the pip: section's lines verbatim.
    requirements: tuple[str, ...]
    # The X.Y the `python` spec pins, or None: any Python (or no python spec at all).
    python: str | None = None
    python_spec: str | None = None  # the python dependency as written, e.g. "python=3.9"
    python_specifier: str = ""  # its PEP 440 form, e.g. "==3.9.*"; "" allows any
    apt_packages: tuple[str, ...] = ()  # Debian packages, in order, no repeats
    mapped: tuple[tuple[str, str], ...] = ()  # (conda spec, pip requirement)
    from_debian: tuple[tuple[str, str], ...] = ()  # (conda spec, Debian package)
    dropped: tuple[str, ...] = ()  # conda specs left out, as written
    pip: tuple[str, ...] = field(default=())  # the pip: section's lines (also at the end
    # of `requirements`)
    export: bool = False  # the file is a `conda env export`
    # An export's C libraries and build-only packages, left out, as written.
    build_only: tuple[str, ...] = ()

    def renamed(self) -> tuple[tuple[str, str], ...]:
        """(conda name, PyPI requirement name) of the dependencies that become another
        PyPI project (a name that differs only by PyPI's normalisation is the same one),
        or that gain extras."""
        pairs = []
        for spec, requirement in self.mapped:
            conda_name = package_name(spec).lower()
            parsed = Requirement(requirement)
            pypi_name = re.split(r"[<>=!~;\s]", requirement, maxsplit=1)[0]
            if (canonicalize_name(conda_name) != canonicalize_name(parsed.name)
                    or parsed.extras) and (conda_name, pypi_name) not in pairs:
                pairs.append((conda_name, pypi_name))
        return tuple(pairs)

    def notice(self) -> str:
        parts = []
        if renamed := self.renamed():
            parts.append(", ".join(f"{a} -> {b}" for a, b in renamed))
        if self.dropped:
            names = dict.fromkeys(package_name(spec) for spec in self.dropped)
            parts.append(f"{', '.join(names)} dropped")
        if self.build_only:
            parts.append(f"{len(self.build_only)} C libraries and build-only packages "
                         "dropped (the wheels carry their own)")
        if self.from_debian:
            programs = []
            for spec, package in self.from_debian:
                conda_name = package_name(spec)
                shown = conda_name if conda_name == package else f"{conda_name} as {package}"
                if shown not in programs:
                    programs.append(shown)
            parts.append(f"{', '.join(programs)} from Debian")
        changes = "; ".join(parts) if parts else "same names"
        if self.export:
            return (f"{self.name}, a conda env export, is installed from PyPI at its exact "
                    f"versions, without conda's build strings: {changes}")
        return f"{self.name} is installed from PyPI: {changes}"


@dataclass(frozen=True)
class CondaOnly:
    """An environment.yml that needs conda: each reason names one dependency or channel
    (the names nothing translates share one reason)."""

    name: str
    reasons: tuple[str, ...]

    def notice(self) -> str:
        return (f"{self.name} cannot be installed from PyPI: {'; '.join(self.reasons)}")


def is_export(environment: Mapping, conda_specs: list[str]) -> bool:
    """Whether an environment.yml is a `conda env export`: it names the prefix the
    environment lived in, or a name and every dependency as name=version=build."""
    if environment.get("prefix"):
        return True
    return bool(environment.get("name")) and bool(conda_specs) and all(
        _EXPORT_LINE.match(spec) for spec in conda_specs)


def translate(environment: Mapping, name: str = "environment.yml", *,
              table: Table | None = None,
              mapping: Mapping[str, str] | None = None) -> PypiTranslation | CondaOnly:
    """Translate a parsed environment.yml (its mapping of name, channels, dependencies,
    prefix); a malformed one raises BinderConfigError naming `name`."""
    table = table or load_table()
    mapping = load_mapping() if mapping is None else mapping
    if not isinstance(environment, Mapping):
        raise BinderConfigError(f"{name}: expected a mapping with channels and dependencies")
    reasons: list[str] = []

    channels = environment.get("channels") or []
    if not isinstance(channels, list):
        raise BinderConfigError(f"{name}: channels must be a list of strings")
    for channel in channels:
        if str(channel).strip().rstrip("/") not in PYPI_CHANNELS:
            reasons.append(f"packages from channel {channel} have no PyPI equivalent")

    raw = environment.get("dependencies")
    if not isinstance(raw, list) or not raw:
        raise BinderConfigError(f"{name}: no dependencies: list the conda packages to install")
    conda_specs: list[str] = []
    pip: list[str] = []
    for entry in raw:
        if isinstance(entry, Mapping) and set(entry) == {"pip"}:
            lines = entry["pip"] or []
            if not isinstance(lines, list) or not all(
                    isinstance(line, str | int | float) for line in lines):
                raise BinderConfigError(f"{name}: the pip: section must be a list of strings")
            pip.extend(str(line).strip() for line in lines)
        elif isinstance(entry, str | int | float) and str(entry).strip():
            conda_specs.append(str(entry).strip())
        else:
            raise BinderConfigError(f"{name}: dependency {entry!r} is neither a conda spec "
                                    "nor a pip: section")

    export = is_export(environment, conda_specs)
    requirements: list[str] = []
    mapped: list[tuple[str, str]] = []
    from_debian: list[tuple[str, str]] = []
    apt: list[str] = []
    dropped: list[str] = []
    build_only: list[str] = []
    unknown: list[str] = []
    python = python_spec = None
    python_specifier = ""
    for spec in conda_specs:
        bare = package_name(spec).lower()
        pypi_name = table.pypi_name(bare, mapping)
        known = pypi_name is not None or bare in table.debian or bare == "python"
        # What the name alone decides, whatever its version or build:
        if bare in table.dropped:
            dropped.append(spec)
            continue
        if bare in table.conda_only or (bare in table.c_libraries and not export):
            why = table.conda_only.get(bare) or table.c_libraries[bare]
            reasons.append(f"{bare} has no faithful PyPI equivalent ({why})")
            continue
        if bare in table.c_libraries or (export and not known and _build_only(bare, spec)):
            build_only.append(spec)
            continue
        try:
            conda_name, specifier = parse_match_spec(spec, export)
        except Untranslatable as exc:
            if known or "::" in spec:
                reasons.append(f"{spec}: {exc}")
            elif bare not in unknown:
                unknown.append(bare)
            continue
        if conda_name == "python":
            python_spec, python_specifier = spec, specifier
            try:
                python = one_minor(specifier)
            except Untranslatable as exc:
                reasons.append(f"{spec}: {exc}")
            continue
        if pypi_name is not None:
            requirement = pypi_name + specifier
            try:
                Requirement(requirement)
            except InvalidRequirement:
                reasons.append(f"{spec}: its version has no PEP 440 form")
                continue
            requirements.append(requirement)
            mapped.append((spec, requirement))
        elif conda_name in table.debian:
            # An export pins every program to what conda installed, not to a choice.
            if specifier and not export:
                reasons.append(f"{spec}: {conda_name} comes from Debian, whose version "
                               "cannot be chosen")
                continue
            package = table.debian[conda_name]
            from_debian.append((spec, package))
            if package not in apt:
                apt.append(package)
        elif conda_name not in unknown:
            unknown.append(conda_name)
    if unknown:
        reasons.append(f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} in "
                       "neither the conda-to-PyPI table nor conda-forge's mapping (a conda "
                       "name is never assumed to be the PyPI project of that name)")
    if reasons:
        return CondaOnly(name=name, reasons=tuple(reasons))
    return PypiTranslation(
        name=name, requirements=(*requirements, *pip), python=python,
        python_spec=python_spec, python_specifier=python_specifier,
        apt_packages=tuple(apt), mapped=tuple(mapped), from_debian=tuple(from_debian),
        dropped=tuple(dropped), pip=tuple(pip), export=export,
        build_only=tuple(build_only))


def lock_header_lines(translation: PypiTranslation) -> list[str]:
    """'#' comment lines recording how the environment.yml was translated, for the top of
    its lock."""
    lines = [f"# {translation.name}, translated from conda-forge names to PyPI:"]
    if translation.export:
        lines.append("#   a conda env export: its build strings dropped, its versions exact")
    if translation.python_spec:
        lines.append(f"#   {translation.python_spec} -> Python "
                     f"{translation.python or 'any'}")
    lines += [f"#   {spec} -> {requirement}" for spec, requirement in translation.mapped]
    lines += [f"#   {spec} -> Debian package {package}"
              for spec, package in translation.from_debian]
    lines += [f"#   {spec}: dropped" for spec in translation.dropped]
    if translation.build_only:
        lines.append(f"#   {len(translation.build_only)} C libraries and build-only "
                     f"packages dropped: {', '.join(translation.build_only)}")
    if translation.pip:
        lines.append(f"#   pip: section: {len(translation.pip)} line(s) as written")
    return [line.replace("\n", " ") for line in lines]


def _build_only(conda_name: str, spec: str) -> bool:
    """Whether an export's entry, unknown to the table and the mapping, is a C library
    or a build-only package: by its name, or by a build string built for no Python."""
    if _BUILD_ONLY_NAME.search(conda_name):
        return True
    match = _EXPORT_LINE.match(spec)
    return match is not None and not _PYTHON_BUILD.search(match.group(1))
