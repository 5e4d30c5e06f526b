"""The per-user Dask policy: how big a session and its Dask cluster may be.

Caps are enforced by the API server (a ResourceQuota and a LimitRange in the user's
namespace, see sessions.objects) and by the pangeo-binder operator policy, which clamps
worker counts and says so in an event. The session's Dask configuration (environment
variables) makes `KubeCluster()` and the JupyterLab sidebar start clusters that fit.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from ..dask_operator.contract import DASHBOARD_PREFIX_ENV
from ..errors import PangeoBinderError

# A Kubernetes quantity (k8s.io/apimachinery resource.Quantity): a signed decimal number,
# then a binary or decimal SI suffix or a decimal exponent ("1E" is an exa, "1E3" a
# thousand).
_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|"
                       r"(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?")
_FACTORS = {
    **{suffix: Decimal(2) ** (10 * power)
       for power, suffix in enumerate(["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"], start=1)},
    **{suffix: Decimal(10) ** (3 * power)
       for power, suffix in enumerate(["n", "u", "m", "", "k", "M", "G", "T", "P", "E"],
                                      start=-3)},
}
# The API server holds a quantity in 64 bits.
_LARGEST = Decimal(2) ** 63 - 1


class CapsError(PangeoBinderError):
    """Caps that make no sense (a negative worker count, an unreadable quantity)."""


def quantity(text: str, what: str) -> Decimal:
    """A positive Kubernetes quantity ("500m", "2", "4Gi", "1e3", "2Ei") as a number."""
    match = _QUANTITY.fullmatch(str(text).strip())
    value = None
    if match:
        number, exponent, suffix = match.groups()
        try:
            scale = Decimal(10) ** int(exponent[1:]) if exponent else _FACTORS[suffix or ""]
            value = Decimal(number) * scale
        except ArithmeticError:  # an exponent beyond Decimal's range
            value = None
    if value is None or not 0 < value <= _LARGEST:
        raise CapsError(f"invalid {what} {text!r}: use a Kubernetes quantity like 2, 500m or 4Gi")
    return value


def _cpu(value: Decimal) -> str:
    return f"{int(value * 1000)}m"


def _memory(value: Decimal) -> str:
    return f"{int(value / 2**20)}Mi"


@dataclass(frozen=True)
class DaskCaps:
    max_workers: int = 4
    worker_cores: str = "1"
    worker_memory: str = "2Gi"
    session_cores: str = "1"
    session_memory: str = "2Gi"
    idle_timeout: int = 1800  # seconds without work before a Dask cluster removes itself
    # A Dask pod's CPU limit; None: the session's cores when more than a worker's. Its
    # request (worker_cores) is what is reserved and shared out under contention; the
    # limit lets a pod burst into idle CPU, which a start-up (importing distributed, a
    # second of CPU) needs: at a hard 200m, a worker takes ten seconds to come up.
    worker_cores_limit: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.max_workers <= 1000:
            raise CapsError(f"max workers must be between 0 and 1000, not {self.max_workers}")
        if self.idle_timeout < 0:
            raise CapsError("the idle timeout cannot be negative")
        for what in ("worker_cores", "worker_memory", "session_cores", "session_memory"):
            quantity(getattr(self, what), what.replace("_", " "))
        if self.worker_cores_limit is not None and \
                quantity(self.worker_cores_limit, "worker cores limit") < \
                quantity(self.worker_cores, "worker cores"):
            raise CapsError(f"the worker cores limit {self.worker_cores_limit} is less than "
                            f"the worker cores {self.worker_cores}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DaskCaps:
        """Caps from PANGEO_BINDER_MAX_WORKERS, _WORKER_CORES, _WORKER_MEMORY,
        _SESSION_CORES, _SESSION_MEMORY and _IDLE_TIMEOUT; defaults for the others. A
        hub's deployment sets these (deploy/binderhub/values.yaml, hub.extraEnv)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in fields(cls):
            text = environ.get(f"PANGEO_BINDER_{item.name.upper()}", "").strip()
            if not text:
                continue
            if item.type in (int, "int"):
                try:
                    values[item.name] = int(text)
                except ValueError:
                    raise CapsError(f"PANGEO_BINDER_{item.name.upper()} must be a whole "
                                    f"number, not {text!r}") from None
            else:
                values[item.name] = text
        return cls(**values)

    @property
    def worker_cpu_limit(self) -> Decimal:
        if self.worker_cores_limit is not None:
            return quantity(self.worker_cores_limit, "worker cores limit")
        return max(quantity(self.worker_cores, "cores"), quantity(self.session_cores, "cores"))

    @property
    def worker_resources(self) -> dict[str, dict[str, str]]:
        """A Dask pod's size: its memory a hard size (memory cannot be taken back), its
        CPU a request with a limit that may be higher (`worker_cores_limit`)."""
        return {"requests": {"cpu": self.worker_cores, "memory": self.worker_memory},
                "limits": {"cpu": _cpu(self.worker_cpu_limit), "memory": self.worker_memory}}

    def quota(self) -> dict[str, str | int]:
        """The namespace's hard limits: the session, one scheduler and the workers (the
        scheduler gets a worker's size, as dask-kubernetes gives it)."""
        pods = 1 + 1 + self.max_workers
        session_cores = quantity(self.session_cores, "cores")
        cores = session_cores + (pods - 1) * quantity(self.worker_cores, "cores")
        cores_limit = session_cores + (pods - 1) * self.worker_cpu_limit
        memory = quantity(self.session_memory, "memory") + \
            (pods - 1) * quantity(self.worker_memory, "memory")
        return {
            "pods": pods,
            "cpu": _cpu(cores),
            "cpu_limit": _cpu(cores_limit),
            "memory": _memory(memory),
            "worker_cpu_limit": _cpu(self.worker_cpu_limit),
            "max_container_cpu": _cpu(max(session_cores, self.worker_cpu_limit)),
            "max_container_memory": _memory(max(quantity(self.session_memory, "memory"),
                                                quantity(self.worker_memory, "memory"))),
        }


def session_dask_env(image: str, namespace: str, caps: DaskCaps) -> dict[str, str]:
    """Dask configuration of a Kubernetes session, as DASK_* environment variables.

    `KubeCluster()` with no arguments then creates a cluster in the user's namespace,
    running the session's own image (so client, scheduler and workers agree), sized to
    the caps, removing itself when idle; the JupyterLab Dask sidebar does the same.
    """
    return {
        "DASK_KUBERNETES__NAMESPACE": namespace,
        "DASK_KUBERNETES__IMAGE": image,
        "DASK_KUBERNETES__RESOURCES": json.dumps(caps.worker_resources),
        "DASK_KUBERNETES__IDLE_TIMEOUT": str(caps.idle_timeout),
        "DASK_LABEXTENSION__FACTORY__MODULE": "dask_kubernetes.operator",
        "DASK_LABEXTENSION__FACTORY__CLASS": "KubeCluster",
        "DASK_LABEXTENSION__FACTORY__KWARGS": "{}",
        # The scheduler's dashboard, reached through jupyter-server-proxy, under the
        # session's secret path (the Secret gives it the session: `tls_env`).
        "DASK_DISTRIBUTED__DASHBOARD__LINK":
            f"{{JUPYTERHUB_SERVICE_PREFIX}}proxy/{{host}}:{{port}}/{{{DASHBOARD_PREFIX_ENV}}}/status",
        "PANGEO_BINDER_MAX_WORKERS": str(caps.max_workers),
    }
