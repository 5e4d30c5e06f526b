"""The Dask operator's questions to schedulers (pangeo_binder.dask_operator.schedulers),
asked of a real HTTP server on 127.0.0.1 that answers as a hostile scheduler does: error
statuses, pickles (on its HTTP port and, where distributed is installed, on a Dask RPC
port), huge and slow bodies, worker names that are paths or another group's workers,
JSON of the wrong types. The Kubernetes side (the scheduler Service's address, the
group's worker Deployments) is a fixed answer here; its checks are tested on objects.

PANGEO_BINDER_TEST_UPSTREAM_SCHEDULER_CALLS=1 points the same tests at dask-kubernetes'
own functions instead, to see them fail (their RPC fallback runs the pickle; their
scale-down returns the path), where dask-kubernetes is installed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import json
import logging
import os
import pickle
import socket
import threading
import time
import types
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pangeo_binder.dask_operator import schedulers
from pangeo_binder.dask_operator.schedulers import SchedulerReplyError
from tests.helpers.cli import REPO_ROOT

LOG = logging.getLogger("test-dask-schedulers")
NAMESPACE = "pangeo-mallory"
GROUP = "mallory-default"
# The worker group's own Deployments, oldest first.
OWNED = [f"{GROUP}-worker-{i}aaaa" for i in range(3)]
ALICE_SESSION = "../../../../../../api/v1/namespaces/pangeo-alice/pods/pangeo-alice-session"
PREFIX = "0123456789abcdef0123456789abcdef"  # a session's secret dashboard path
UPSTREAM = os.environ.get("PANGEO_BINDER_TEST_UPSTREAM_SCHEDULER_CALLS") == "1"


def _controller() -> types.ModuleType | None:
    try:
        return importlib.import_module(schedulers.CONTROLLER)
    except ImportError:  # kopf and dask-kubernetes ship in the operator image, not the venv
        return None


CONTROLLER = _controller()
needs_controller = pytest.mark.skipif(
    CONTROLLER is None, reason="dask-kubernetes and kopf are not installed here (they are in "
    "the operator image, `pangeo-binder base --operator`)")
# Upstream's functions as imported, before anything installs ours.
UPSTREAM_CALLS = {name: getattr(CONTROLLER, name) for name in schedulers.REPLACEMENTS
                  if CONTROLLER is not None}


# ------------------------------------------------------------ a hostile scheduler

class CreatesMarker:
    """Unpickling this creates a file: the proof that a scheduler's pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


Answer = Callable[[BaseHTTPRequestHandler], None]


def reply(body: bytes | str | Any, status: int = 200, content_type: str = "application/json",
          delay: float = 0) -> Answer:
    data = body if isinstance(body, bytes) else (
        body.encode() if isinstance(body, str) else json.dumps(body).encode())

    def answer(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(delay)
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    return answer


class HostileScheduler:
    """An HTTP server answering each path as told, recording what it was asked and how
    many bytes it wrote; and a Dask RPC port whose every answer is a pickle (a real
    distributed Server where distributed is installed, else a listener that records)."""

    def __init__(self, marker: Path) -> None:
        self.routes: dict[str, Answer] = {}
        self.requests: list[tuple[str, str, bytes]] = []
        self.sent = 0
        self.rpc_calls: list[str] = []
        self.marker = marker
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                server.requests.append((self.command, self.path, self.rfile.read(length)))
                answer = server.routes.get(self.path, reply(b"not found", 404, "text/plain"))
                with contextlib.suppress(OSError):
                    answer(self)

            do_GET = do_POST = _any

            def log_message(self, *_: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, args=(0.02,), daemon=True).start()
        self.rpc_address = self._rpc()

    def _rpc(self) -> str:
        try:
            from distributed.core import Server
            from distributed.protocol import to_serialize
        except ImportError:
            listener = socket.create_server(("127.0.0.1", 0))

            def accept() -> None:
                while True:
                    connection, _ = listener.accept()
                    self.rpc_calls.append("connection")
                    connection.close()
            threading.Thread(target=accept, daemon=True).start()
            return f"tcp://127.0.0.1:{listener.getsockname()[1]}"

        def pickled(name: str) -> Callable[..., Any]:
            async def handler(*_: Any, **__: Any) -> Any:
                self.rpc_calls.append(name)
                return to_serialize(CreatesMarker(self.marker))
            return handler

        calls = ("check_idle", "adaptive_target", "workers_to_close", "retire_workers",
                 "run_function")
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()

        async def start() -> str:
            server = Server({name: pickled(name) for name in calls})
            await server.listen("tcp://127.0.0.1:0")
            return server.address
        return asyncio.run_coroutine_threadsafe(start(), loop).result(10)

    def stream(self, path: str, chunk: bytes, pause: float = 0,
               length: int | None = None) -> None:
        """Answer `path` with `chunk` again and again until the client hangs up."""
        def answer(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            if length is not None:
                handler.send_header("Content-Length", str(length))
            handler.end_headers()
            for _ in range(100_000):
                handler.wfile.write(chunk)
                handler.wfile.flush()
                self.sent += len(chunk)
                time.sleep(pause)
        self.routes[path] = answer


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[HostileScheduler]:
    server = HostileScheduler(tmp_path / "pickle-ran")
    yield server
    server.http.shutdown()
    server.http.server_close()


# ------------------------------------------------ the calls, as upstream's handlers make them

class Calls:
    """The three scheduler calls with the arguments upstream's handlers pass."""

    def __init__(self, functions: dict[str, Callable[..., Any]]) -> None:
        self.functions = functions

    def idle(self) -> float:
        return asyncio.run(self.functions["check_scheduler_idle"](
            scheduler_service_name="mallory-scheduler", namespace=NAMESPACE, logger=LOG))

    def desired(self) -> int:
        return asyncio.run(self.functions["get_desired_workers"](
            scheduler_service_name="mallory-scheduler", namespace=NAMESPACE))

    def retire(self, n_workers: int) -> list[str]:
        return asyncio.run(self.functions["retire_workers"](
            n_workers=n_workers, scheduler_service_name="mallory-scheduler",
            worker_group_name=GROUP, namespace=NAMESPACE, logger=LOG))


@pytest.fixture
def calls(scheduler: HostileScheduler, monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Ours, with the scheduler Service's address and the group's Deployments answered
    here (what the API server would say); or upstream's, likewise redirected."""
    async def dashboard_url(service_name: str, namespace: str) -> str:
        return scheduler.url

    async def owned_workers(group: str, namespace: str) -> list[str]:
        return list(OWNED) if group == GROUP else []

    monkeypatch.setattr(schedulers, "dashboard_url", dashboard_url)
    monkeypatch.setattr(schedulers, "owned_workers", owned_workers)
    if not UPSTREAM:
        return Calls(dict(schedulers.REPLACEMENTS))
    if CONTROLLER is None:
        pytest.skip("dask-kubernetes is not installed here")
    import kr8s

    async def get_scheduler_address(service_name: str, namespace: str,
                                    port_name: str = "tcp-comm", **_: Any) -> str:
        return scheduler.url if port_name == "http-dashboard" else scheduler.rpc_address

    async def deployments(*_: Any, **__: Any) -> Any:
        for name in OWNED:
            yield types.SimpleNamespace(name=name)

    monkeypatch.setattr(CONTROLLER, "get_scheduler_address", get_scheduler_address)
    monkeypatch.setattr(kr8s.asyncio, "get", deployments)
    return Calls(UPSTREAM_CALLS)


def attempt(call: Callable[[], Any]) -> Any:
    with contextlib.suppress(Exception):
        return call()
    return None


# ---------------------------------------------------------------- honest answers

def test_honest_answers_are_used(scheduler: HostileScheduler, calls: Calls) -> None:
    scheduler.routes["/api/v1/check_idle"] = reply({"idle_since": 1764000000.25})
    scheduler.routes["/api/v1/adaptive_target"] = reply({"workers": 2})
    identity = {"type": "Worker", "id": OWNED[1], "name": OWNED[1], "nthreads": 1,
                "metrics": {"task_counts": {}}, "status": "closing_gracefully"}
    scheduler.routes["/api/v1/retire_workers"] = reply({"tls://172.17.0.9:40123": identity})
    assert calls.idle() == 1764000000.25
    assert calls.desired() == 2
    assert calls.retire(1) == [OWNED[1]]  # the scheduler's choice, not the newest
    assert ("POST", "/api/v1/retire_workers", b'{"n":1}') in [
        (m, p, b.replace(b" ", b"")) for m, p, b in scheduler.requests]


def test_a_busy_scheduler_is_not_idle(scheduler: HostileScheduler, calls: Calls) -> None:
    scheduler.routes["/api/v1/check_idle"] = reply({"idle_since": None})
    assert calls.idle() == 0.0  # falsy: autoshutdown leaves the cluster alone


def test_fewer_retired_than_asked_are_topped_up_newest_first(
        scheduler: HostileScheduler, calls: Calls) -> None:
    scheduler.routes["/api/v1/retire_workers"] = reply({"a": {"name": OWNED[2]}})
    assert calls.retire(2) == [OWNED[2], OWNED[1]]


# ------------------------------------------------------------------------- pickles

PICKLE_ANSWERS = {
    "500, then RPC": lambda marker: reply(pickle.dumps(CreatesMarker(marker)), 500,
                                          "application/octet-stream"),
    "200 with a pickle": lambda marker: reply(pickle.dumps(CreatesMarker(marker)), 200,
                                              "application/octet-stream"),
    "404, then RPC": lambda marker: reply(b"", 404),
}


@pytest.mark.parametrize("answer", PICKLE_ANSWERS, ids=list(PICKLE_ANSWERS))
def test_no_reply_is_ever_unpickled(scheduler: HostileScheduler, calls: Calls,
                                    answer: str) -> None:
    for path in ("check_idle", "adaptive_target", "retire_workers"):
        scheduler.routes[f"/api/v1/{path}"] = PICKLE_ANSWERS[answer](scheduler.marker)
    attempt(calls.idle)
    attempt(calls.desired)
    retired = attempt(lambda: calls.retire(1))
    assert not scheduler.marker.exists(), "a scheduler's pickle ran in the operator"
    assert scheduler.rpc_calls == []  # never Dask RPC
    assert retired == [OWNED[-1]]  # no answer: the newest worker goes, as upstream's last resort
    with pytest.raises(SchedulerReplyError):
        calls.idle()
    with pytest.raises(SchedulerReplyError):
        calls.desired()


# ------------------------------------------------------------------- worker names

FOREIGN_NAMES = {
    "a path to alice's session pod": ALICE_SESSION,
    "a path below an owned name": f"{OWNED[0]}/../../../pods/pangeo-alice-session",
    "another group's worker": "mallory-gpu-worker-0aaaa",
    "another namespace's worker": "alice-default-worker-0aaaa",
    "an owned name, spelled differently": OWNED[0].upper(),
    "an owned name with a space": f"{OWNED[0]} ",
    "an owned name with a query": f"{OWNED[0]}?dryRun=All",
}


@pytest.mark.parametrize("name", FOREIGN_NAMES.values(), ids=list(FOREIGN_NAMES))
def test_only_the_groups_own_workers_are_retired(scheduler: HostileScheduler, calls: Calls,
                                                 name: str) -> None:
    scheduler.routes["/api/v1/retire_workers"] = reply({"tls://10.0.0.1:1": {"name": name}})
    retired = calls.retire(1)
    assert name not in retired
    assert retired == [OWNED[-1]]


def test_a_reply_naming_more_workers_than_asked_is_refused(
        scheduler: HostileScheduler, calls: Calls) -> None:
    scheduler.routes["/api/v1/retire_workers"] = reply(
        {str(i): {"name": name} for i, name in enumerate(OWNED)})
    assert calls.retire(1) == [OWNED[-1]]


# ---------------------------------------------------------------------- JSON types

IDLE_REPLIES = {"a string": {"idle_since": "1764000000"}, "a boolean": {"idle_since": True},
                "a list": [1764000000], "no key": {}, "negative": {"idle_since": -5},
                "NaN": '{"idle_since": NaN}', "Infinity": '{"idle_since": Infinity}',
                "not JSON": "idle", "a huge number": '{"idle_since": 1' + "0" * 5000 + "}",
                "deep nesting": "[" * 100_000 + "]" * 100_000}
TARGET_REPLIES = {"a string": {"workers": "3"}, "a boolean": {"workers": True},
                  "a float": {"workers": 2.5}, "negative": {"workers": -1},
                  "too many": {"workers": 10**12}, "null": {"workers": None},
                  "a list": [3], "UTF-16": json.dumps({"workers": 1}).encode("utf-16")}
RETIRE_REPLIES = {"a list": [{"name": OWNED[0]}], "a bare name": {"a": OWNED[0]},
                  "a number": {"a": {"name": 0}}, "an empty name": {"a": {"name": ""}},
                  "a long name": {"a": {"name": OWNED[0] + "x" * 300}},
                  "a long address": {"x" * 300: {"name": OWNED[0]}},
                  "names as a list": {"a": {"name": [OWNED[0]]}}}


@pytest.mark.parametrize("body", IDLE_REPLIES.values(), ids=list(IDLE_REPLIES))
def test_idle_replies_of_the_wrong_type_are_refused(scheduler: HostileScheduler,
                                                    calls: Calls, body: Any) -> None:
    scheduler.routes["/api/v1/check_idle"] = reply(body)
    with pytest.raises(SchedulerReplyError):
        calls.idle()


@pytest.mark.parametrize("body", TARGET_REPLIES.values(), ids=list(TARGET_REPLIES))
def test_target_replies_of_the_wrong_type_are_refused(scheduler: HostileScheduler,
                                                      calls: Calls, body: Any) -> None:
    scheduler.routes["/api/v1/adaptive_target"] = reply(body)
    with pytest.raises(SchedulerReplyError):
        calls.desired()


@pytest.mark.parametrize("body", RETIRE_REPLIES.values(), ids=list(RETIRE_REPLIES))
def test_retire_replies_of_the_wrong_type_are_refused(scheduler: HostileScheduler,
                                                      calls: Calls, body: Any) -> None:
    scheduler.routes["/api/v1/retire_workers"] = reply(body)
    assert calls.retire(1) == [OWNED[-1]]


# ------------------------------------------------------------------ size and time

def test_a_huge_reply_is_cut_off(scheduler: HostileScheduler, calls: Calls) -> None:
    scheduler.stream("/api/v1/check_idle", b'{"idle_since": [' + b"0," * 32768)
    started = time.monotonic()
    with pytest.raises(SchedulerReplyError):
        calls.idle()
    assert time.monotonic() - started < 5
    time.sleep(0.2)
    assert scheduler.sent < 16 * schedulers.MAX_REPLY_BYTES  # what socket buffers hold


@pytest.mark.parametrize("how", ["answers late", "trickles"])
def test_a_slow_scheduler_is_given_up_on(scheduler: HostileScheduler, calls: Calls,
                                         monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    monkeypatch.setattr(schedulers, "QUERY_SECONDS", 0.5)
    monkeypatch.setattr(schedulers, "RETIRE_SECONDS", 0.5)
    for path in ("check_idle", "adaptive_target", "retire_workers"):
        if how == "answers late":
            scheduler.routes[f"/api/v1/{path}"] = reply({"idle_since": 1, "workers": 1}, delay=5)
        else:  # a byte every 0.1 s: each read is quick, the whole never ends
            scheduler.stream(f"/api/v1/{path}", b" ", pause=0.1, length=1 << 20)
    started = time.monotonic()
    with pytest.raises(SchedulerReplyError):
        calls.idle()
    with pytest.raises(SchedulerReplyError):
        calls.desired()
    assert calls.retire(1) == [OWNED[-1]]
    assert time.monotonic() - started < 4


def test_redirects_are_not_followed(scheduler: HostileScheduler, calls: Calls) -> None:
    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(307)
        handler.send_header("Location", f"{scheduler.url}/elsewhere")
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    scheduler.routes["/api/v1/check_idle"] = redirect
    scheduler.routes["/elsewhere"] = reply({"idle_since": 1.0})
    with pytest.raises(SchedulerReplyError):
        calls.idle()
    assert "/elsewhere" not in [path for _, path, _ in scheduler.requests]


# --------------------------------------------------------- what Kubernetes says

def _service(**spec: Any) -> dict[str, Any]:
    """The scheduler Service as dask-kubernetes makes it for KubeCluster()."""
    return {"metadata": {"name": "mallory-scheduler",
                         "labels": {"dask.org/cluster-name": "mallory",
                                    "dask.org/component": "scheduler"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.3.4",
                     "selector": {"dask.org/cluster-name": "mallory",
                                  "dask.org/component": "scheduler"},
                     "ports": [{"name": "tcp-comm", "port": 8786},
                               {"name": "http-dashboard", "port": 8787}]} | spec}


def test_the_scheduler_is_reached_at_its_services_cluster_ip() -> None:
    assert schedulers.service_url("mallory-scheduler", _service()) == "http://10.96.3.4:8787"
    assert schedulers.service_url("mallory-scheduler", _service(clusterIP="fd00::7")) == \
        "http://[fd00::7]:8787"


SERVICES = {
    "no selector (endpoints by hand)": _service(selector=None),
    "another cluster's selector": _service(selector={"dask.org/cluster-name": "alice",
                                                     "dask.org/component": "scheduler"}),
    "headless": _service(clusterIP="None"),
    "an external name": _service(type="ExternalName", clusterIP=None,
                                 externalName="kubernetes.default.svc"),
    "a host name as cluster IP": _service(clusterIP="evil.example.org"),
    "no dashboard port": _service(ports=[{"name": "tcp-comm", "port": 8786}]),
    "two dashboard ports": _service(ports=[{"name": "http-dashboard", "port": 1},
                                           {"name": "http-dashboard", "port": 2}]),
    "a port that is a string": _service(ports=[{"name": "http-dashboard", "port": "80/x"}]),
}


@pytest.mark.parametrize("service", SERVICES.values(), ids=list(SERVICES))
def test_services_that_may_not_lead_to_the_scheduler_are_refused(service: dict) -> None:
    with pytest.raises(SchedulerReplyError):
        schedulers.service_url("mallory-scheduler", service)


def _secret(**data: str) -> dict[str, Any]:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_the_scheduler_is_asked_under_the_sessions_secret_path() -> None:
    prefix = "0123456789abcdef0123456789abcdef"
    assert schedulers.dashboard_path(_secret(**{"dashboard-prefix": prefix})) == f"/{prefix}"
    assert schedulers.dashboard_path(_secret(**{"tls.crt": "..."})) == ""  # made before paths


@pytest.mark.parametrize("prefix", ["../../api", "a/b", "a?b=c", "", "x" * 129, "é"])
def test_a_secret_path_that_is_not_a_plain_name_is_refused(prefix: str) -> None:
    with pytest.raises(SchedulerReplyError):
        schedulers.dashboard_path(_secret(**{"dashboard-prefix": prefix}))
    with pytest.raises(SchedulerReplyError):
        schedulers.dashboard_path({"data": {"dashboard-prefix": "not base64!"}})


def _deployment(name: str, created: str, group: str = GROUP, component: str = "worker",
                owner: str = "DaskWorkerGroup") -> dict[str, Any]:
    return {"metadata": {
        "name": name, "creationTimestamp": created,
        "labels": {"dask.org/workergroup-name": group, "dask.org/component": component},
        "ownerReferences": [{"apiVersion": "kubernetes.dask.org/v1", "kind": owner,
                             "name": group, "controller": True}]}}


def test_a_groups_workers_are_the_deployments_it_owns_oldest_first() -> None:
    deployments = [
        _deployment(OWNED[2], "2026-12-01T10:00:02Z"),
        _deployment(OWNED[0], "2026-12-01T10:00:00Z"),
        _deployment("mallory-scheduler", "2026-12-01T09:00:00Z", component="scheduler"),
        _deployment("mallory-gpu-worker-0aaaa", "2026-12-01T10:00:00Z", group="mallory-gpu"),
        _deployment("made-by-hand", "2026-12-01T10:00:00Z", owner="ReplicaSet"),
        _deployment(OWNED[1], "2026-12-01T10:00:01Z"),
    ]
    assert schedulers.group_workers(GROUP, deployments) == OWNED


# ------------------------------------------------------------------ installation

FAKE_CONTROLLER = """
class SchedulerCommError(Exception):
    pass

async def retire_workers(n_workers, scheduler_service_name, worker_group_name, namespace,
                         logger):
    pass

async def check_scheduler_idle(scheduler_service_name, namespace, logger):
    pass

async def get_desired_workers(scheduler_service_name, namespace):
    pass

async def daskcluster_autoshutdown(**_):
    await check_scheduler_idle()

async def daskworkergroup_replica_update(**_):
    for name in await retire_workers():
        pass

async def daskautoscaler_adapt(**_):
    await get_desired_workers()
"""

CHANGED_CONTROLLERS = {
    "retire_workers is gone": ("\ndel retire_workers\n", "no coroutine retire_workers"),
    "retire_workers renamed": ("\nretire = retire_workers\ndel retire_workers\n",
                               "no coroutine retire_workers"),
    "check_scheduler_idle takes more": (
        "\nasync def check_scheduler_idle(scheduler_service_name, namespace, logger, port):\n"
        "    pass\n", "check_scheduler_idle takes other arguments"),
    "a handler asks by itself": (
        "\nasync def daskautoscaler_adapt(**_):\n"
        "    async with rpc('tcp://x') as comm:\n        await comm.adaptive_target()\n",
        "daskautoscaler_adapt no longer calls get_desired_workers"),
    "a new scheduler call": (
        "\nasync def daskjob_wait(**_):\n    await get_scheduler_address('x', 'y')\n",
        "daskjob_wait talks to schedulers"),
}


def _fake_controller(extra: str = "") -> types.ModuleType:
    module = types.ModuleType("fake_dask_controller")
    exec(FAKE_CONTROLLER + extra, module.__dict__)
    return module


def test_install_replaces_the_controllers_scheduler_calls(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schedulers, "_desired_workers_error", SchedulerReplyError)
    controller = _fake_controller()
    schedulers.install(controller)
    for name, ours in schedulers.REPLACEMENTS.items():
        assert getattr(controller, name) is ours
    assert schedulers._desired_workers_error is controller.SchedulerCommError


@pytest.mark.parametrize("change", CHANGED_CONTROLLERS, ids=list(CHANGED_CONTROLLERS))
def test_a_changed_controller_stops_the_operator_with_one_line(change: str) -> None:
    source, why = CHANGED_CONTROLLERS[change]
    controller = _fake_controller(source)
    before = dict(vars(controller))
    with pytest.raises(SystemExit) as stopped:
        schedulers.install(controller)
    message = str(stopped.value.code)
    assert why in message and "\n" not in message
    assert message.startswith("pangeo-binder: refusing to start the Dask operator")
    assert vars(controller) == before  # nothing of upstream's half-replaced


@needs_controller
def test_the_pinned_controller_runs_our_scheduler_calls(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the operator image runs: dask-kubernetes' controller with ours installed, its
    handlers reaching ours through their module's globals."""
    assert CONTROLLER is not None
    for name in schedulers.REPLACEMENTS:  # undone after the test
        monkeypatch.setattr(CONTROLLER, name, getattr(CONTROLLER, name))
    monkeypatch.setattr(schedulers, "_desired_workers_error", SchedulerReplyError)
    assert schedulers.controller_problems(CONTROLLER) == []
    schedulers.install()
    for handler, name in schedulers.CALLERS.items():
        assert getattr(CONTROLLER, handler).__globals__[name] is schedulers.REPLACEMENTS[name]
    assert issubclass(schedulers._desired_workers_error, Exception)
    assert schedulers._desired_workers_error is CONTROLLER.SchedulerCommError


@needs_controller
def test_the_operators_policy_module_installs_them() -> None:
    """`kopf run -m dask_kubernetes.operator.controller -m ...policy`, in a fresh
    interpreter as the operator starts."""
    import subprocess
    import sys
    check = ("import dask_kubernetes.operator.controller as package\n"
             "import pangeo_binder.dask_operator.policy\n"
             "from pangeo_binder.dask_operator import schedulers\n"
             "import importlib\n"
             "controller = importlib.import_module(schedulers.CONTROLLER)\n"
             "assert all(getattr(controller, n) is f\n"
             "           for n, f in schedulers.REPLACEMENTS.items())\n")
    # This checkout first, then whatever the interpreter was given (the operator image's).
    path = [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))},
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]


# ------------------------------------------------------ a real, honest scheduler

@pytest.fixture
def honest_scheduler() -> Iterator[Callable[[Callable[..., Any]], Any]]:
    """Run a coroutine against a real distributed Scheduler serving its HTTP API under a
    secret path, as in a session, with a worker named as one of the group's Deployments."""
    distributed = pytest.importorskip("distributed")
    import dask

    async def run(check: Callable[..., Any]) -> Any:
        routes = [*dask.config.get("distributed.scheduler.http.routes"),
                  "distributed.http.scheduler.api"]
        with dask.config.set({"distributed.scheduler.http.routes": routes}):
            async with distributed.Scheduler(port=0, dashboard_address="127.0.0.1:0",
                                             http_prefix=f"/{PREFIX}") as s, \
                    distributed.Worker(s.address, name=OWNED[1], nthreads=1):
                return await check(f"http://127.0.0.1:{s.http_server.port}/{PREFIX}")

    yield lambda check: asyncio.run(run(check))


def test_an_honest_schedulers_answers(honest_scheduler: Callable[..., Any],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    async def check(url: str) -> tuple[float, int, list[str]]:
        async def dashboard_url(*_: Any) -> str:
            return url

        async def owned_workers(*_: Any) -> list[str]:
            return list(OWNED)
        monkeypatch.setattr(schedulers, "dashboard_url", dashboard_url)
        monkeypatch.setattr(schedulers, "owned_workers", owned_workers)
        return (await schedulers.check_scheduler_idle("mallory-scheduler", NAMESPACE, LOG),
                await schedulers.get_desired_workers("mallory-scheduler", NAMESPACE),
                await schedulers.retire_workers(1, "mallory-scheduler", GROUP, NAMESPACE, LOG))

    idle_since, target, retired = honest_scheduler(check)
    assert idle_since == 0.0 or 0 < idle_since <= time.time()
    assert target >= 0
    assert retired == [OWNED[1]]  # the worker the scheduler retired, by its name
