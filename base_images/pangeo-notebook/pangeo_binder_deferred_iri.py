"""rfc3987-syntax's parsers, built when an IRI is first checked rather than at import.

jsonschema's format checker imports rfc3987_syntax whenever it is installed (the
`format-nongpl` extra, which jupyter-events and nbformat ask for), and rfc3987_syntax
builds its 36 Lark (Earley) parsers at import: 1.2 s of CPU that every Jupyter server
start, kernel-less nbconvert run and smoke test pays, though no Jupyter schema names an
IRI format. Loaded at interpreter start by pangeo-binder-deferred-iri.pth, this module
makes `import rfc3987_syntax` give the package with nothing run yet; its own code runs,
unchanged, the first time anything in it is used. Standard library only.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading

_PACKAGE = "rfc3987_syntax"


class _Deferred(importlib.abc.Loader):
    def __init__(self, real: importlib.abc.Loader) -> None:
        self.real = real
        self.lock = threading.Lock()

    def create_module(self, spec):
        return None  # the default module object, which the real code later fills

    def exec_module(self, module) -> None:
        real, lock, loaded = self.real, self.lock, []

        def load() -> None:
            with lock:
                if not loaded:
                    loaded.append(True)
                    del module.__getattr__, module.is_valid_syntax
                    real.exec_module(module)  # defines the real names in this module

        def is_valid_syntax(term, value):  # what jsonschema imports by name
            load()
            return module.is_valid_syntax(term, value)

        def __getattr__(name):  # any other name: the real module's (PEP 562)
            load()
            try:
                return module.__dict__[name]
            except KeyError:
                raise AttributeError(f"module {_PACKAGE!r} has no attribute {name!r}") \
                    from None

        module.is_valid_syntax = is_valid_syntax
        module.__getattr__ = __getattr__


class _DeferIRIParsers(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != _PACKAGE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Deferred(spec.loader)
        return spec


def install() -> None:
    if not any(isinstance(f, _DeferIRIParsers) for f in sys.meta_path):
        sys.meta_path.insert(0, _DeferIRIParsers())
