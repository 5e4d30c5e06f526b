"""The Dask operator's questions to Dask schedulers, asked as if every answer were hostile.

A scheduler runs its user's image, so whatever it answers is its user's choice. The
dask-kubernetes controller (2026.3) asks schedulers three things, each in a module-level
function that its kopf handlers call by name:

- `check_scheduler_idle` (autoshutdown): HTTP `GET /api/v1/check_idle`; on an error status
  it falls back to Dask RPC (`check_idle`, then `run_function` with a pickled function),
  whose replies it deserialises, pickles included: a scheduler answering 500 then a pickle
  ran its code in the operator, with the operator's cluster-wide rights;
- `retire_workers` (scale-down): HTTP `POST /api/v1/retire_workers`, then Dask RPC; the
  handler deletes a Deployment of each name the scheduler returns, pasted into the API
  path, so `../../../../../../api/v1/namespaces/alice/pods/session` deleted alice's pod;
- `get_desired_workers` (DaskAutoscaler): HTTP `GET /api/v1/adaptive_target`, then RPC.

`install()` puts this module's functions in their place. They speak HTTP and JSON only
(never Dask RPC, never pickle) to the scheduler Service's own cluster IP, under the
session's secret dashboard path, with bounded reply size and time; they check the
reply's schema, and return only names of worker Deployments the worker group owns, as
the API server listed them. A reply that fails any check counts as no answer: no
autoshutdown, no autoscaling step, and for scale-down upstream's last resort, newest
workers first.

It ships alone in the operator image: kr8s and httpx (a kr8s dependency), the standard
library and the session contract (contract.py) only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import importlib
import importlib.metadata
import inspect
import ipaddress
import json
import logging
import math
import re
import types
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import kr8s

# In a session namespace the scheduler's HTTP port answers only under a secret path, kept
# in the namespace's Dask credentials Secret (admission.py sets the dashboard's side up).
from .contract import DASHBOARD_PREFIX_KEY
from .contract import DASK_TLS_SECRET as DASK_SECRET

# The module whose globals the kopf handlers read (the package only re-exports its names).
CONTROLLER = "dask_kubernetes.operator.controller.controller"
DASHBOARD_PORT = "http-dashboard"
CLUSTER_LABEL = "dask.org/cluster-name"
COMPONENT_LABEL = "dask.org/component"
GROUP_LABEL = "dask.org/workergroup-name"
_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,128}")

# Honest replies are small: check_idle and adaptive_target a few bytes, retire_workers a
# worker's identity (a few KB with its metrics) per retired worker.
MAX_REPLY_BYTES = 1 << 20
# Seconds for a whole exchange, connection to last byte (a trickling reply included).
# Retiring moves the workers' data elsewhere before the scheduler answers.
QUERY_SECONDS = 10.0
RETIRE_SECONDS = 60.0
MAX_WORKERS = 10_000
MAX_NAME = 253  # a Kubernetes object name

Logger = logging.Logger | logging.LoggerAdapter


class SchedulerReplyError(Exception):
    """A scheduler gave no answer this operator accepts."""


# The exception upstream's autoscaler handler catches; install() points it at upstream's.
_desired_workers_error: type[Exception] = SchedulerReplyError


# --------------------------------------------------------- Kubernetes lookups

async def dashboard_url(service_name: str, namespace: str) -> str:
    """The scheduler's HTTP address, from its Service (see service_url), under the
    namespace's secret dashboard path when it has one."""
    api = await kr8s.asyncio.api()
    service = await kr8s.asyncio.objects.Service.get(service_name, namespace=namespace, api=api)
    # A GET of that one Secret: the operator may read no other (kr8s' Secret.get lists
    # with a field selector, which a grant by name does not cover).
    secret = kr8s.asyncio.objects.Secret(DASK_SECRET, namespace=namespace, api=api)
    try:
        await secret.refresh()
    except kr8s.NotFoundError:  # not a session namespace: no secret path
        return service_url(service_name, service.raw)
    except kr8s.ServerError as exc:
        raise SchedulerReplyError(f"cannot read {DASK_SECRET}: {exc}") from None
    return service_url(service_name, service.raw) + dashboard_path(secret.raw)


def dashboard_path(secret: dict[str, Any]) -> str:
    """The secret path ("/<prefix>") from the namespace's Dask Secret, "" without one."""
    value = (secret.get("data") or {}).get(DASHBOARD_PREFIX_KEY)
    if value is None:
        return ""
    try:
        prefix = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, TypeError):
        prefix = ""
    if not _PREFIX.fullmatch(prefix):
        raise SchedulerReplyError(f"{DASK_SECRET} has no usable {DASHBOARD_PREFIX_KEY}")
    return f"/{prefix}"


def service_url(service_name: str, service: dict[str, Any]) -> str:
    """The HTTP address of the scheduler behind Service `service`: its cluster IP, not a
    DNS name (and no port-forward fallback), and only for a Service that selects its
    cluster's scheduler pods: endpoints written by hand could point at another
    namespace's scheduler."""
    spec = service.get("spec") or {}
    cluster = (service.get("metadata", {}).get("labels") or {}).get(CLUSTER_LABEL)
    if service_name != f"{cluster}-scheduler" or spec.get("selector") != {
            CLUSTER_LABEL: cluster, COMPONENT_LABEL: "scheduler"}:
        raise SchedulerReplyError(f"service {service_name} does not select its scheduler")
    try:
        address = ipaddress.ip_address(spec.get("clusterIP") or "")
    except ValueError:
        raise SchedulerReplyError(f"service {service_name} has no cluster IP") from None
    ports = [p.get("port") for p in spec.get("ports") or [] if p.get("name") == DASHBOARD_PORT]
    if len(ports) != 1 or not _is_int(ports[0]) or not 0 < ports[0] < 65536:
        raise SchedulerReplyError(f"service {service_name} has no {DASHBOARD_PORT} port")
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{host}:{ports[0]}"


async def owned_workers(worker_group_name: str, namespace: str) -> list[str]:
    """The worker Deployments of the group (see group_workers), listed by its label."""
    api = await kr8s.asyncio.api()
    deployments = [d.raw async for d in api.async_get(
        "deployments", namespace=namespace, label_selector={GROUP_LABEL: worker_group_name})]
    return group_workers(worker_group_name, deployments)


def group_workers(worker_group_name: str, deployments: list[dict[str, Any]]) -> list[str]:
    """Names of the worker Deployments that DaskWorkerGroup `worker_group_name` owns,
    oldest first: the only names a scale-down may delete."""
    found = []
    for deployment in deployments:
        meta = deployment.get("metadata") or {}
        labels = meta.get("labels") or {}
        if labels.get(COMPONENT_LABEL) == "worker" and labels.get(
                GROUP_LABEL) == worker_group_name and any(
                o.get("kind") == "DaskWorkerGroup" and o.get("name") == worker_group_name
                and str(o.get("apiVersion", "")).startswith("kubernetes.dask.org/")
                for o in meta.get("ownerReferences") or []):
            found.append((meta.get("creationTimestamp") or "", meta["name"]))
    return [name for _, name in sorted(found)]


# ------------------------------------------------------------------ HTTP, bounded

async def _ask(method: str, url: str, body: dict[str, Any] | None, seconds: float) -> Any:
    """One HTTP exchange, its JSON reply parsed: no proxy from the environment, no
    redirect, no compression, at most MAX_REPLY_BYTES within `seconds`."""
    data = bytearray()
    headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
    try:
        async with (asyncio.timeout(seconds),
                    httpx.AsyncClient(timeout=seconds, trust_env=False,
                                      follow_redirects=False) as client,
                    client.stream(method, url, json=body, headers=headers) as reply):
            if reply.status_code != 200:
                raise SchedulerReplyError(f"HTTP {reply.status_code}")
            if reply.headers.get("content-encoding", "identity") != "identity":
                raise SchedulerReplyError("an encoded reply")
            async for chunk in reply.aiter_raw():
                data += chunk
                if len(data) > MAX_REPLY_BYTES:
                    raise SchedulerReplyError(f"a reply over {MAX_REPLY_BYTES} bytes")
    except TimeoutError:
        raise SchedulerReplyError(f"no whole reply within {seconds:g} s") from None
    except httpx.HTTPError as exc:
        raise SchedulerReplyError(f"HTTP failed: {type(exc).__name__}") from None
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SchedulerReplyError("a reply that is not JSON") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json would accept NaN and Infinity


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    """A scheduler's string, safe to log: short and quoted."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ------------------------------------------------- the controller's functions, safe

async def check_scheduler_idle(scheduler_service_name: str, namespace: str | None,
                               logger: Logger) -> float:
    """Since when the scheduler is idle (epoch seconds), 0.0 when it is busy. Raises
    SchedulerReplyError without an acceptable answer (autoshutdown then skips)."""
    assert namespace
    url = await dashboard_url(scheduler_service_name, namespace)
    reply = await _ask("GET", f"{url}/api/v1/check_idle", None, QUERY_SECONDS)
    if not isinstance(reply, dict) or "idle_since" not in reply:
        raise SchedulerReplyError("check_idle: not an object with idle_since")
    idle_since = reply["idle_since"]
    if idle_since is None:
        return 0.0
    if isinstance(idle_since, bool) or not isinstance(idle_since, int | float) \
            or not math.isfinite(idle_since) or idle_since < 0:
        raise SchedulerReplyError(f"check_idle: idle_since {_shown(idle_since)}")
    logger.debug("Scheduler idle since: %s", idle_since)
    return float(idle_since)


async def get_desired_workers(scheduler_service_name: str, namespace: str | None) -> int:
    """The scheduler's adaptive target. Raises upstream's SchedulerCommError (once
    installed) without an acceptable answer: the autoscaler then skips this round."""
    assert namespace
    try:
        url = await dashboard_url(scheduler_service_name, namespace)
        reply = await _ask("GET", f"{url}/api/v1/adaptive_target", None, QUERY_SECONDS)
        workers = reply.get("workers") if isinstance(reply, dict) else None
        if not _is_int(workers) or not 0 <= workers <= MAX_WORKERS:
            raise SchedulerReplyError(f"adaptive_target: workers {_shown(workers)}")
    except SchedulerReplyError as exc:
        raise _desired_workers_error(f"no number of workers from the scheduler: {exc}") from exc
    return workers


def _retired_names(reply: Any, n_workers: int) -> list[str]:
    """The worker names in a retire_workers reply ({address: {"name": ...}}), checked."""
    if not isinstance(reply, dict) or len(reply) > n_workers:
        raise SchedulerReplyError(f"retire_workers: not an object of at most {n_workers}")
    names = []
    for address, info in reply.items():
        name = info.get("name") if isinstance(info, dict) else None
        if len(address) > MAX_NAME or not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            raise SchedulerReplyError(f"retire_workers: worker {_shown(address)}")
        names.append(name)
    return names


async def retire_workers(n_workers: int, scheduler_service_name: str, worker_group_name: str,
                         namespace: str | None, logger: Logger) -> list[str]:
    """Names of `n_workers` worker Deployments of the group to delete: those the scheduler
    retired, when they are the group's own, then the newest of the rest."""
    assert namespace
    owned = await owned_workers(worker_group_name, namespace)
    retired: list[str] = []
    try:
        url = await dashboard_url(scheduler_service_name, namespace)
        reply = await _ask("POST", f"{url}/api/v1/retire_workers", {"n": n_workers},
                           RETIRE_SECONDS)
        for name in _retired_names(reply, n_workers):
            # Compared exactly with names the API server listed, never used to build a path.
            if name in owned and name not in retired:
                retired.append(name)
            else:
                logger.warning(f"{worker_group_name}: the scheduler retired {_shown(name)}, "
                               "which is no worker of this group: ignored")
    except SchedulerReplyError as exc:
        logger.warning(f"Scaling {worker_group_name}: no usable answer from the scheduler "
                       f"({exc}); retiring the newest workers, which can lose data")
    rest = [name for name in owned if name not in retired]
    newest = rest[max(len(rest) - (n_workers - len(retired)), 0):]
    logger.info("Retired workers %s", retired + newest)
    return retired + newest


# ----------------------------------------------------------------- installation

REPLACEMENTS: dict[str, Callable[..., Awaitable[Any]]] = {
    "check_scheduler_idle": check_scheduler_idle,
    "retire_workers": retire_workers,
    "get_desired_workers": get_desired_workers,
}
# Upstream's handlers that call them, by module-global name (so they call ours).
CALLERS = {"daskcluster_autoshutdown": "check_scheduler_idle",
           "daskworkergroup_replica_update": "retire_workers",
           "daskautoscaler_adapt": "get_desired_workers"}
# What reaches a scheduler in the controller: any other function that uses one of these is
# a conversation nobody here has reviewed.
SCHEDULER_CALLS = frozenset({"rpc", "aiohttp", "get_scheduler_address", "dumps",
                             "clean_exception"})


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def controller_problems(controller: types.ModuleType) -> list[str]:
    """Why this module cannot stand in for the controller's scheduler calls: [] if it can."""
    problems = []
    for name, ours in REPLACEMENTS.items():
        theirs = getattr(controller, name, None)
        if theirs is ours:
            continue
        if not inspect.iscoroutinefunction(theirs):
            problems.append(f"it has no coroutine {name}")
        elif list(inspect.signature(theirs).parameters) != list(
                inspect.signature(ours).parameters):
            problems.append(f"{name} takes other arguments")
    for handler, name in CALLERS.items():
        function = getattr(controller, handler, None)
        if not inspect.isfunction(function) or function.__globals__ is not vars(controller) \
                or name not in _names(function.__code__):
            problems.append(f"{handler} no longer calls {name} from {controller.__name__}")
    for attr, function in vars(controller).items():
        if inspect.isfunction(function) and function.__module__ == controller.__name__ \
                and attr not in REPLACEMENTS and SCHEDULER_CALLS & set(_names(function.__code__)):
            problems.append(f"{attr} talks to schedulers")
    error = getattr(controller, "SchedulerCommError", None)
    if not (isinstance(error, type) and issubclass(error, Exception)):
        problems.append("it has no SchedulerCommError")
    return problems


def install(controller: types.ModuleType | None = None) -> None:
    """Replace the controller's scheduler calls with this module's, or stop the operator
    with one line: running upstream's instead would run a hostile scheduler's pickles."""
    global _desired_workers_error
    controller = controller or importlib.import_module(CONTROLLER)
    if problems := controller_problems(controller):
        try:
            version = importlib.metadata.version("dask-kubernetes")
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        raise SystemExit(f"pangeo-binder: refusing to start the Dask operator: dask-kubernetes "
                         f"{version}'s controller changed ({'; '.join(problems)}), and its "
                         "scheduler calls must not run unreviewed")
    _desired_workers_error = controller.SchedulerCommError
    for name, ours in REPLACEMENTS.items():
        setattr(controller, name, ours)
