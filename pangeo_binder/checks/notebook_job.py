"""`pangeo-binder test --kubernetes`: the notebooks run as a Job in the user's namespace.

A notebook that calls `KubeCluster()` is tested for real only where a session runs: with
the user's ServiceAccount, caps, Dask configuration and TLS credentials. So the Job's pod
is made like a session pod, from the same functions (`prepare_user_access`,
`session_dask_env`, `tls_env`), and carries the session label the Dask operator's policy
looks for: its admission webhooks let the notebooks' Dask pods run the image, and the
clusters are owned by the Job's pod. The runner's lines are read from the pod's log.

Afterwards nothing of the run is left: the Job and its pod are deleted, then the Dask
clusters its notebooks made (named after the run, or owned by its pod alone), and the
namespace too when the run made it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from ..dask_operator.admission import tls_env
from ..dask_operator.contract import SESSION_LABEL
from ..events import Emit, Event, Phase
from ..kube import (
    KubernetesError,
    connect,
    delete_if_present,
    ensure,
    kubernetes_errors,
    user_slug,
    wait_for,
)
from ..sessions.dask_policy import DaskCaps, session_dask_env
from ..sessions.launch import mark_owner, prepare_user_access
from ..sessions.objects import (
    KubeTarget,
    SessionNames,
    container_security,
    env_list,
    labels,
    pod_security,
    session_resources,
)
from ..waiting import Waiting, wait_until
from .notebooks import (
    RUNNER,
    STARTUP_SECONDS,
    NotebookOptions,
    NotebookResult,
    NotebookRunner,
    RunnerLog,
    Watchdog,
)

RUN_LABEL = "pangeo-binder/notebook-test"
# A Job's name is a label value on its pods (63 characters at most): room for
# "pangeo-", "-test-" and the run's 6 hex digits.
_JOB_SLUG_LENGTH = 63 - len("pangeo-") - len("-test-") - 6
# Pod states that waiting will not mend.
_HOPELESS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
             "CreateContainerConfigError", "CreateContainerError"}


@dataclass(frozen=True)
class JobTarget:
    target: KubeTarget
    caps: DaskCaps = field(default_factory=DaskCaps)


@dataclass(frozen=True)
class JobNames:
    job: str
    clusters: str  # the prefix of the Dask clusters the notebooks make

    @classmethod
    def new(cls, user: str) -> JobNames:
        run = secrets.token_hex(3)
        return cls(job=f"pangeo-{user_slug(user, _JOB_SLUG_LENGTH)}-test-{run}",
                   clusters=f"nbtest-{run}-")


def job_manifest(image: str, options: NotebookOptions, job: JobTarget, names: JobNames,
                 deadline: int) -> dict:
    """The Job that runs a repository's notebooks in the user's namespace. Its pod is
    made like the session pod (sessions.objects): the user's ServiceAccount, the
    session's security, caps and Dask configuration, and the session label, so that the
    Dask operator's policy lets the notebooks' `KubeCluster()` run this image and makes
    the pod the owner of those clusters. One run, one Job: it is deleted afterwards."""
    session = SessionNames.of(job.target)
    dask_env = {**session_dask_env(image, session.namespace, job.caps),
                # KubeCluster()'s default name: the run's clusters are found by it.
                "DASK_KUBERNETES__NAME": names.clusters + "{uuid}"}
    slug = user_slug(job.target.user)
    pod_labels = {**labels(slug, "notebook-test"),
                  SESSION_LABEL: "true",  # what the Dask operator's policy looks for
                  RUN_LABEL: names.job}
    manifest = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": names.job, "namespace": session.namespace,
                     "labels": labels(slug, "notebook-test")},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline,
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "serviceAccountName": session.account,
                    "enableServiceLinks": False,
                    "restartPolicy": "Never",
                    "securityContext": pod_security(),
                    "containers": [{
                        "name": "notebooks",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "args": ["python", "-c", RUNNER.read_text(), *options.runner_args()],
                        "env": [*env_list(dask_env), *tls_env()],
                        "securityContext": container_security(),
                        "resources": session_resources(job.caps),
                    }],
                },
            },
        },
    }
    # The exact user name on the Job and its pod, as on the session's objects.
    mark_owner([manifest, manifest["spec"]["template"]], job.target.user)
    return manifest


def job_runner(job: JobTarget) -> NotebookRunner:
    """check_notebooks' runner for notebooks run as a Job of `job`'s user."""
    return lambda image, options, emit: run_job(image, options, job, emit)


def run_job(image: str, options: NotebookOptions, job: JobTarget,
            emit: Emit) -> tuple[NotebookResult, ...]:
    """Run the notebooks as a Job in the user's namespace; remove what the run made."""
    from kr8s.objects import Namespace

    api = connect(job.target.kubeconfig, job.target.context)
    session = SessionNames.of(job.target)
    names = JobNames.new(job.target.user)
    with kubernetes_errors(f"cannot read namespace {session.namespace}"):
        made_namespace = not Namespace(session.namespace, api=api).exists()
    log = RunnerLog(emit)
    stopped: list[str] = []
    # A backstop should this process not live to delete the Job: the runner ends on
    # its own timeouts, and this process's watchdog on the run's budget.
    deadline = STARTUP_SECONDS + 24 * 3600
    emit(Event(Phase.TESTING, f"Running the notebooks as Job {names.job} in namespace "
                              f"{session.namespace}"))
    try:
        prepare_user_access(api, job.target, job.caps)
        ensure(api, job_manifest(image, options, job, names, deadline))

        def stop(reason: str) -> None:
            stopped.append(reason)
            _delete_job(api, session.namespace, names, force=True)

        watchdog = Watchdog(log, options, stop)
        try:
            pod = _wait_for_pod(api, session.namespace, names, emit)
            try:
                with kubernetes_errors(f"cannot read the log of {names.job}"):
                    if pod is not None:
                        log.feed_all(pod.logs(follow=True, timeout=None))
            except KubernetesError:
                if not stopped:  # else the watchdog removed the pod: it says why
                    raise
        finally:
            watchdog.finished.set()
    finally:
        _clean_up(api, session.namespace, names, made_namespace, emit)
    return log.finish(stopped[0] if stopped else None)


def _pods(api, namespace: str, names: JobNames) -> list:
    return list(api.get("pods", namespace=namespace,
                        label_selector=f"{RUN_LABEL}={names.job}"))


def _wait_for_pod(api, namespace: str, names: JobNames, emit: Emit, timeout: float = 300):
    """The Job's pod once its container runs (or has ended); a refusal to make it (the
    caps, an admission webhook) or an image that cannot be had is a KubernetesError.
    None when the pod is gone (the watchdog's doing)."""
    from kr8s.objects import Job

    def started():
        with kubernetes_errors(f"cannot read Job {names.job}"):
            pods = _pods(api, namespace, names)
            if not pods and not Job(names.job, namespace=namespace, api=api).exists():
                return None
        message = "waiting for the Job's pod"
        for pod in pods:
            status = pod.raw.get("status", {})
            for container in status.get("containerStatuses", []):
                state = container.get("state", {})
                if "running" in state or "terminated" in state:
                    return pod
                waiting = state.get("waiting") or {}
                if waiting.get("reason") in _HOPELESS:
                    raise KubernetesError(f"the notebooks cannot start: {waiting['reason']}: "
                                          f"{waiting.get('message', '')}".rstrip(": "))
            message = status.get("phase", "Pending")
        if not pods:
            refused = _refusal(api, namespace, names.job)
            if refused:
                raise KubernetesError(f"the Job's pod was refused: {refused}")
        return Waiting(message)

    return wait_until(started, timeout, every=0.5,
                      tell=lambda message: emit(Event(Phase.TESTING, message)),
                      timed_out=lambda _: KubernetesError(
                          f"the Job's pod did not start within {timeout:.0f}s"))


def _refusal(api, namespace: str, job: str) -> str | None:
    """Why the Job controller could not make the pod (FailedCreate: the quota, an
    admission webhook), when it says so."""
    with kubernetes_errors(f"cannot read the events of Job {job}"):
        events = api.get("events", namespace=namespace,
                         field_selector=f"involvedObject.name={job}")
        for event in events:
            if event.raw.get("reason") == "FailedCreate":
                return " ".join(str(event.raw.get("message", "")).split())
    return None


def _delete_job(api, namespace: str, names: JobNames, force: bool = False) -> None:
    from kr8s.objects import Job

    with kubernetes_errors(f"cannot delete Job {names.job}"):
        delete_if_present(Job(names.job, namespace=namespace, api=api))
        for pod in _pods(api, namespace, names):
            delete_if_present(pod, force=force)


def _own_clusters(api, namespace: str, names: JobNames, pod_uids: set[str]) -> list:
    """The Dask clusters of this run: named after it, or owned by its pod alone (a
    cluster made while the user's session also ran is owned by both)."""
    try:
        clusters = list(api.get("daskclusters.kubernetes.dask.org", namespace=namespace))
    except ValueError:  # no Dask operator in this cluster
        return []
    ours = []
    for cluster in clusters:
        owners = {o.get("uid") for o in cluster.metadata.get("ownerReferences") or []}
        if cluster.name.startswith(names.clusters) or (owners and owners <= pod_uids):
            ours.append(cluster)
    return ours


def _clean_up(api, namespace: str, names: JobNames, made_namespace: bool, emit: Emit,
              timeout: float = 180) -> None:
    """Delete the Job, its pod and the run's Dask clusters (and the namespace the run
    made), and wait until they are gone."""
    from kr8s.objects import Namespace

    with kubernetes_errors(f"cannot remove what Job {names.job} made"):
        uids = {pod.metadata.uid for pod in _pods(api, namespace, names)}
        _delete_job(api, namespace, names, force=True)
        for cluster in _own_clusters(api, namespace, names, uids):
            delete_if_present(cluster)
        if made_namespace:
            delete_if_present(Namespace(namespace, api=api))
            gone = Namespace(namespace, api=api)
            wait_for(lambda: not gone.exists(), timeout,
                     f"namespace {namespace} was not gone within {timeout:.0f}s")
            return

        def all_gone() -> bool:
            return not _pods(api, namespace, names) and \
                not _own_clusters(api, namespace, names, uids)

        wait_for(all_gone, timeout, f"the pods and Dask clusters of Job {names.job} were "
                                    f"not gone within {timeout:.0f}s")
    emit(Event(Phase.TESTING, f"Removed Job {names.job} and its Dask clusters", detail=True))
