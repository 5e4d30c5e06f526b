"""Dask over TLS in pangeo-binder sessions, for dask-kubernetes' operator client.

A session's Dask clusters accept only connections that present the session's own
certificate (DASK_DISTRIBUTED__COMM__TLS__*, from a Secret of the user's namespace, with
DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION). distributed speaks TLS then, but
dask-kubernetes 2026.3's operator client does not: it names schedulers `tcp://...` and
talks to them with a bare `rpc()`. Loaded at interpreter start by
pangeo-binder-dask-tls.pth, only where that configuration is set, this module closes
the gap without touching dask-kubernetes' files:

- the scheduler address the operator hands workers and job runners
  (DASK_SCHEDULER_ADDRESS) becomes tls://;
- when dask_kubernetes.operator is imported, the scheduler addresses it finds become
  tls:// and its rpc() calls carry the client's TLS context.
"""

from __future__ import annotations

import importlib.abc
import os
import sys

_MODULES = ("dask_kubernetes.operator.networking",
            "dask_kubernetes.operator.kubecluster.kubecluster")
_ADDRESS_FUNCTIONS = ("get_internal_address_for_scheduler_service",
                      "get_external_address_for_scheduler_service")


def _tls(address: str) -> str:
    return "tls://" + address.removeprefix("tcp://") if address.startswith("tcp://") \
        else address


def _patch(module) -> None:
    from distributed.security import Security

    for name in _ADDRESS_FUNCTIONS:
        if hasattr(module, name):
            original = getattr(module, name)

            async def address(*args, _original=original, **kwargs):
                found = await _original(*args, **kwargs)
                # Only the comm port speaks TLS; the dashboard stays HTTP.
                return _tls(found) if kwargs.get("port_name", "tcp-comm") == "tcp-comm" \
                    else found

            setattr(module, name, address)
    plain_rpc = module.rpc

    def rpc(*args, **kwargs):
        kwargs.setdefault("connection_args", Security().get_connection_args("client"))
        return plain_rpc(*args, **kwargs)

    module.rpc = rpc


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches the dask-kubernetes modules right after they are first executed."""

    def find_spec(self, name, path, target=None):
        if name not in _MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    address = os.environ.get("DASK_SCHEDULER_ADDRESS", "")
    if address.startswith("tcp://"):
        os.environ["DASK_SCHEDULER_ADDRESS"] = _tls(address)
    if not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())
