"""The pod security a session's Dask pods must keep: an allow-list at least as strict as
Kubernetes' Pod Security Standard `restricted`, plus the Dask configuration that keeps a
session's clusters to its own code and its own TLS.

Whatever a session writes into a Dask object's pod specs, the Dask operator runs with its
own rights, so every field is checked here against what is allowed, never against what is
known to be dangerous: a field Kubernetes adds tomorrow is refused until it is listed.
Pure functions over plain dicts (pangeo_binder.dask_operator.admission calls them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

NB_UID = 1000
# Pod Security `restricted`: the only volume types, seccomp profiles, SELinux types,
# added capabilities and sysctls it allows.
VOLUME_TYPES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                          "persistentVolumeClaim", "projected", "secret"})
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
ADDABLE_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SAFE_SYSCTLS = frozenset({"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                          "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
                          "net.ipv4.ping_group_range"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
# Kubernetes 1.20 still honours the seccomp annotations that preceded the field.
SECCOMP_ANNOTATIONS = ("seccomp.security.alpha.kubernetes.io/pod",
                       "container.seccomp.security.alpha.kubernetes.io/")

# Every pod field a Dask pod may carry; how some of them may be set is checked below.
# (Fields the API server fills in, such as priority or serviceAccount, are here because
# the pod webhook sees pods after that.)
POD_FIELDS = frozenset({
    "activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "containers",
    "dnsConfig", "dnsPolicy", "enableServiceLinks", "ephemeralContainers", "hostAliases",
    "hostIPC", "hostNetwork", "hostPID", "hostname", "imagePullSecrets", "initContainers",
    "nodeSelector", "preemptionPolicy", "priority", "priorityClassName", "readinessGates",
    "restartPolicy", "schedulerName", "securityContext", "serviceAccount",
    "serviceAccountName", "setHostnameAsFQDN", "shareProcessNamespace", "subdomain",
    "terminationGracePeriodSeconds", "tolerations", "topologySpreadConstraints", "volumes"})
POD_SECURITY_FIELDS = frozenset({
    "fsGroup", "fsGroupChangePolicy", "runAsGroup", "runAsNonRoot", "runAsUser",
    "seLinuxOptions", "seccompProfile", "supplementalGroups", "sysctls", "windowsOptions"})
CONTAINER_FIELDS = frozenset({
    "name", "image", "command", "args", "workingDir", "ports", "env", "resources",
    "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe",
    "lifecycle", "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy",
    "securityContext", "stdin", "stdinOnce", "tty", "targetContainerName"})
CONTAINER_SECURITY_FIELDS = frozenset({
    "allowPrivilegeEscalation", "capabilities", "privileged", "procMount",
    "readOnlyRootFilesystem", "runAsGroup", "runAsNonRoot", "runAsUser", "seLinuxOptions",
    "seccompProfile", "windowsOptions"})
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

# Dask configuration (as DASK_* variables, as dask reads them: the rest of the name
# lower-cased, `__` or `.` for nesting, `-` and `_` alike) that only the operator sets:
# the session's TLS and the scheduler's HTTP routes (only our exact values), where Dask
# loads code or its configuration from (preloads, configuration files, inherited
# configuration, the nanny's environment for its worker), and a Jupyter server on the
# scheduler (code execution over its dashboard port, which other namespaces reach where
# NetworkPolicy is not enforced). A variable naming a part of these (DASK_DISTRIBUTED)
# or anything inside them counts.
OPERATOR_DASK_CONFIG: tuple[tuple[str, ...], ...] = (
    ("config",), ("root_config",), ("internal_inherit_config",),
    ("distributed", "comm"), ("distributed", "scheduler", "http"),
    ("distributed", "scheduler", "dashboard"), ("distributed", "scheduler", "jupyter"),
    *(("distributed", role, key) for role in ("scheduler", "worker", "nanny")
      for key in ("preload", "preload_argv", "environ", "pre_spawn_environ")),
)
# Command-line options with the same effect: code from elsewhere (preloads, Jupyter),
# other TLS files or an unencrypted protocol or address.
OPERATOR_OPTIONS = ("--preload", "--jupyter", "--tls-", "--protocol", "--listen-address",
                    "--contact-address", "--no-require-encryption", "--require-encryption")


def dask_config_path(name: str) -> tuple[str, ...] | None:
    """The Dask configuration key an environment variable sets, canonical, or None."""
    if not name.upper().startswith("DASK_"):  # dask itself reads only DASK_; be wider
        return None
    key = name[5:].lower().replace("__", ".")
    return tuple(part.replace("-", "_") for part in key.split("."))


def _related(path: tuple[str, ...], reserved: tuple[str, ...]) -> bool:
    shorter = min(len(path), len(reserved))
    return path[:shorter] == reserved[:shorter]


def containers(pod: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name in CONTAINER_LISTS:
        for index, container in enumerate(pod.get(name) or []):
            yield f"{name}[{index}]", container


def env_violations(container: Mapping[str, Any], place: str,
                   ours: Iterable[Mapping[str, Any]]) -> list[str]:
    """DASK_* variables that reach the operator's configuration, unless they are ours
    exactly; envFrom (names unseen here); Dask options of the same effect."""
    found = []
    if container.get("envFrom"):
        found.append(f"{place}.envFrom: not allowed (name each variable in env)")
    ours = list(ours)
    for entry in container.get("env") or []:
        path = dask_config_path(str(entry.get("name", "")))
        if path is None or entry in ours:
            continue
        if any(_related(path, reserved) for reserved in OPERATOR_DASK_CONFIG):
            found.append(f"{place}.env[{entry.get('name')}]: this Dask setting is the "
                         "operator's")
    for arg in [*(container.get("command") or []), *(container.get("args") or [])]:
        if str(arg).startswith(OPERATOR_OPTIONS):
            found.append(f"{place}: option {str(arg).split('=')[0]} is not allowed")
    return found


def annotation_violations(annotations: Mapping[str, Any], where: str) -> list[str]:
    """AppArmor and seccomp annotations: only the runtime's default or a node's profile."""
    found = []
    for key, value in annotations.items():
        if key.startswith(APPARMOR_ANNOTATION):
            allowed = value == "runtime/default" or str(value).startswith("localhost/")
        elif key.startswith(SECCOMP_ANNOTATIONS):
            allowed = value in ("runtime/default", "docker/default") or \
                str(value).startswith("localhost/")
        else:
            continue
        if not allowed:
            found.append(f"{where}.annotations[{key}]: profile {value!r} is not allowed")
    return found


def _seccomp(profile: Mapping[str, Any] | None, where: str) -> list[str]:
    if profile is not None and profile.get("type") not in SECCOMP_TYPES:
        return [f"{where}.seccompProfile: only RuntimeDefault or Localhost"]
    return []


def _common_security(security: Mapping[str, Any], where: str) -> list[str]:
    """Rules of a pod's or a container's securityContext alike."""
    found = _seccomp(security.get("seccompProfile"), where)
    for key in ("runAsUser", "runAsGroup"):
        if key in security and security[key] != NB_UID:
            found.append(f"{where}.{key}: must be {NB_UID}")
    if "runAsNonRoot" in security and security["runAsNonRoot"] is not True:
        found.append(f"{where}.runAsNonRoot: must be true")
    selinux = security.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or \
            selinux.get("role"):
        found.append(f"{where}.seLinuxOptions: only a restricted type, no user or role")
    if (security.get("windowsOptions") or {}).get("hostProcess"):
        found.append(f"{where}.windowsOptions.hostProcess: not allowed")
    return found


def _unknown(fields: Mapping[str, Any], allowed: frozenset[str], where: str) -> list[str]:
    return [f"{where}.{key}: not an allowed field" for key in sorted(set(fields) - allowed)]


def pod_security_violations(pod: Mapping[str, Any], where: str) -> list[str]:
    """Pod Security `restricted` and more, for one pod spec: only allowed fields and
    volume types, uid and gid 1000, no privilege, no host access."""
    found = _unknown(pod, POD_FIELDS, where)
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            found.append(f"{where}.{key}: host namespaces are not allowed")
    if pod.get("schedulerName", "default-scheduler") != "default-scheduler":
        found.append(f"{where}.schedulerName: only the default scheduler")
    for volume in pod.get("volumes") or []:
        for kind in sorted(set(volume) - VOLUME_TYPES - {"name"}):
            found.append(f"{where}.volumes[{volume.get('name')}]: {kind} volumes are not "
                         "allowed")
    security = pod.get("securityContext") or {}
    place = f"{where}.securityContext"
    found += _unknown(security, POD_SECURITY_FIELDS, place) + _common_security(security, place)
    if security.get("fsGroup") != NB_UID:
        found.append(f"{place}.fsGroup: must be {NB_UID}")
    if set(security.get("supplementalGroups") or []) - {NB_UID}:
        found.append(f"{place}.supplementalGroups: only {NB_UID}")
    for sysctl in security.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            found.append(f"{place}.sysctls: {sysctl.get('name')} is not allowed")
    for container_where, container in containers(pod):
        found += _container_violations(container, security, f"{where}.{container_where}")
    return found


def _container_violations(container: Mapping[str, Any], pod_security: Mapping[str, Any],
                          place: str) -> list[str]:
    found = _unknown({k: v for k, v in container.items() if k != "envFrom"},
                     CONTAINER_FIELDS, place)
    security = container.get("securityContext") or {}
    found += _unknown(security, CONTAINER_SECURITY_FIELDS, f"{place}.securityContext")
    found += _common_security(security, f"{place}.securityContext")
    if security.get("privileged"):
        found.append(f"{place}: privileged containers are not allowed")
    if security.get("allowPrivilegeEscalation", True) is not False:
        found.append(f"{place}: allowPrivilegeEscalation must be false")
    if security.get("procMount", "Default") != "Default":
        found.append(f"{place}: procMount must be Default")
    capabilities = security.get("capabilities") or {}
    if added := sorted(set(capabilities.get("add") or []) - ADDABLE_CAPABILITIES):
        found.append(f"{place}: adding capabilities {', '.join(added)} is not allowed")
    if "ALL" not in (capabilities.get("drop") or []):
        found.append(f"{place}: capabilities must drop ALL")
    # What the container runs with: its own setting, else the pod's.
    for key, wanted in (("runAsUser", NB_UID), ("runAsGroup", NB_UID),
                        ("runAsNonRoot", True)):
        value = security.get(key, pod_security.get(key))
        if value != wanted:
            found.append(f"{place}: {key} must be {wanted}, not {value}")
    if security.get("seccompProfile", pod_security.get("seccompProfile")) is None:
        found.append(f"{place}: a seccomp profile must be set (RuntimeDefault)")
    if any(port.get("hostPort") for port in container.get("ports") or []):
        found.append(f"{place}: host ports are not allowed")
    # The kubelet makes these connections from the node: only to the pod itself.
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        found += _host_handler(container.get(probe) or {}, f"{place}.{probe}")
    for hook in ("postStart", "preStop"):
        found += _host_handler((container.get("lifecycle") or {}).get(hook) or {},
                               f"{place}.lifecycle.{hook}")
    return found


def _host_handler(handler: Mapping[str, Any], where: str) -> list[str]:
    if any((handler.get(kind) or {}).get("host") for kind in ("httpGet", "tcpSocket")):
        return [f"{where}: a probe or hook may not name a host"]
    return []
