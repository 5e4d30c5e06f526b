"""Conda match specs as PEP 440: a conda package spec's name and version, translated by
conda's own MatchSpec rules, or `Untranslatable` saying why it has no PEP 440 form.

* `numpy=1.22` is a *prefix* (fuzzy) match: conda rewrites `=1.22` to `1.22*`, which
  matches 1.22, 1.22.0 and 1.22.4 but not 1.23 nor 1.220 (the comparison is by version
  component). PEP 440's prefix match is the same thing: `numpy==1.22.*`. Likewise
  `numpy=1.22.4` -> `numpy==1.22.4.*` (1.22.4 itself and any 1.22.4.x), `1.22*` and
  `1.22.*` -> `==1.22.*`, and `=X` inside a list (`=1.22,<2`) is a prefix match too.
  With a build string after it (`numpy=1.22=*`, `numpy=1.22=py39_0`), conda reads
  `=1.22` as the exact version: `numpy==1.22`.
* A bare version is an *exact* match: `numpy 1.22` (space-separated) is conda's
  `==1.22`, which matches 1.22 and 1.22.0 only: `numpy==1.22`. `numpy==1.22.*` is conda's
  prefix match (the leading `==` is stripped first): `numpy==1.22.*`.
* `>=`, `<=`, `>`, `<`, `!=`, `~=` and comma-separated conjunctions mean the same in both;
  spaces are removed (`numpy >=1.2, <2` -> `numpy>=1.2,<2`); a `.*` after an ordering
  operator is dropped, as conda does.
* `|` (or) has no PEP 440 form: it is accepted only when every alternative translates
  to the same specifier, otherwise the environment stays conda-only. Parentheses too.
* A build string (`numpy=1.22=py39_0`, `numpy 1.22 py39*`, `[build=...]`) selects one
  conda build, which has no PyPI counterpart: outside an export such a spec is refused
  (CondaOnly), not silently dropped. A build string of `*` means "any build".
* `conda-forge::xarray` / `defaults::xarray`: the channel prefix is removed; any other
  channel prefix is refused. `name[version='>=1.2']` is read as its version; any other
  bracket key (build, channel, subdir, md5, ...) is refused.
* `python` is not a requirement: its spec becomes `python`, the X.Y it pins when it
  allows exactly one minor version (`python=3.9`, `python==3.11.*`, `python=3.11.4`,
  `python >=3.10,<3.11`), else None ("any"), with the raw spec and its PEP 440 form kept.
"""

from __future__ import annotations

import re

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

_SPEC_CHANNELS = frozenset({"conda-forge", "defaults"})
_OPERATOR = re.compile(r"^(==|!=|<=|>=|~=|<|>|=)?(.*)$")
_NAME_AND_REST = re.compile(r"^([^ =<>!~]+)(.*)$")
_BUILD_AFTER_EQUALS = re.compile(r"^(.*[^<>!=~,|])=([^=<>!~,|]+)$")
# conda-forge's MPI and CUDA variants: mpi_mpich_py311..., cuda118_py311... (not nompi_).
_VARIANT_BUILD = re.compile(r"(^|_)(mpi|cuda)")


class Untranslatable(Exception):
    """Why one conda match spec has no PEP 440 form."""


def package_name(spec: str) -> str:
    """The package name a spec is about, its channel and version aside."""
    spec = spec.split("::")[-1]
    match = _NAME_AND_REST.match(spec.strip())
    return match.group(1).split("[")[0] if match else spec


def parse_match_spec(spec: str, export: bool = False) -> tuple[str, str]:
    """A conda match spec's package name and its PEP 440 specifier ("" for any); an
    export's build strings are dropped, any other is refused."""
    text = spec.split("#", 1)[0].strip()
    bracket_version = None
    if "[" in text:
        match = re.fullmatch(r"([^\[\]]*)\[([^\[\]]*)\]", text)
        if not match:
            raise Untranslatable("not a conda package spec")
        text, bracket_version = match.group(1).strip(), _bracket_version(match.group(2))
    if "::" in text:
        channel, _, text = text.rpartition("::")
        if channel.split("/")[0] not in _SPEC_CHANNELS:
            raise Untranslatable(f"packages from channel {channel} have no PyPI equivalent")
    match = _NAME_AND_REST.match(text)
    if not match:
        raise Untranslatable("not a conda package spec")
    conda_name, rest = match.group(1).lower(), match.group(2).strip()
    if bracket_version is not None:
        if rest:
            raise Untranslatable("gives a version twice")
        rest = bracket_version
    return conda_name, _version_spec(rest, export) if rest else ""


def _bracket_version(inside: str) -> str:
    version = None
    for item in filter(None, (part.strip() for part in re.split(r",(?=\s*\w+\s*=)", inside))):
        key, equals, value = item.partition("=")
        key, value = key.strip(), value.strip().strip("'\"")
        if not equals:
            raise Untranslatable("not a conda package spec")
        if key != "version":
            raise Untranslatable(f"[{key}=...] selects conda packages, which PyPI cannot "
                                  "honour")
        version = value
    if version is None:
        raise Untranslatable("not a conda package spec")
    return version


def _version_spec(rest: str, export: bool = False) -> str:
    """The PEP 440 specifier of a match spec's version (and build) part, following conda's
    MatchSpec: `=1.2` is `1.2*` unless a build follows, a leading `==` is stripped; a
    build string is refused, but for an export's, which is dropped (not an MPI or CUDA
    variant's)."""
    rest = re.sub(r"\s*([,|])\s*", r"\1", rest)
    rest = re.sub(r"(==|!=|<=|>=|~=|<|>|=)\s+", r"\1", rest)
    if " " in rest:
        version, build = rest.split(None, 1)
        if " " in build:
            raise Untranslatable("not a conda package spec")
    elif match := _BUILD_AFTER_EQUALS.match(rest):
        version, build = match.groups()
    else:
        version, build = rest, None
    if build not in (None, "*") and not export:
        raise Untranslatable(f"build string {build} selects a conda build, which PyPI "
                              "cannot honour")
    if build is not None and _VARIANT_BUILD.search(build):
        raise Untranslatable(f"build {build} is a conda-forge MPI or CUDA variant, which "
                              "PyPI's wheels do not offer alike")
    if version.startswith("=="):
        version = version[2:]
    elif version.startswith("=") and not any(c in version[1:] for c in "=,|"):
        # conda: `=1.2` alone is `1.2*`; followed by a build string, it is `1.2` exactly.
        as_written = version.endswith("*") or build is not None
        version = version[1:] if as_written else version[1:] + "*"
    if "(" in version or ")" in version:
        raise Untranslatable("a grouped version has no PEP 440 form")
    alternatives = {",".join(filter(None, (_one_constraint(piece)
                                           for piece in alternative.split(","))))
                    for alternative in version.split("|")}
    if len(alternatives) > 1:
        raise Untranslatable("an 'or' of versions has no PEP 440 form")
    specifier = alternatives.pop()
    try:
        SpecifierSet(specifier)
    except InvalidSpecifier:
        raise Untranslatable("its version has no PEP 440 form") from None
    return specifier


def _one_constraint(piece: str) -> str:
    """One conda version constraint (no comma, no `|`) in PEP 440, "" for any version."""
    operator, version = _OPERATOR.match(piece).groups()  # type: ignore[union-attr]
    if version in ("", "*"):
        if operator in (None, "=", "==") or version == "*":
            return ""
        raise Untranslatable("not a conda package spec")
    starred = version.endswith("*")
    base = version.rstrip("*").rstrip(".") if starred else version
    if "*" in base or not base:
        raise Untranslatable(f"version pattern {version} has no PEP 440 form")
    try:
        Version(base)
    except InvalidVersion:
        raise Untranslatable(f"version {base} is not a PEP 440 version") from None
    if operator in (None, "=") and (starred or operator == "="):
        return f"=={base}.*"
    if operator is None:
        return f"=={base}"
    if operator == "!=" and starred:
        return f"!={base}.*"
    if operator == "~=" and starred:
        raise Untranslatable(f"~={version} is not a valid version spec")
    return f"{operator}{base}"  # conda ignores a .* after ==, <, <=, >, >=


def one_minor(specifier: str) -> str | None:
    """The X.Y a Python specifier allows, if it allows exactly one; None for several."""
    allowed = SpecifierSet(specifier)
    minors = [f"{major}.{minor}" for major, minor in
              [(2, m) for m in range(8)] + [(3, m) for m in range(40)]
              if any(Version(f"{major}.{minor}.{patch}") in allowed for patch in range(60))]
    if not minors:
        raise Untranslatable("no Python version matches it")
    return minors[0] if len(minors) == 1 else None
