"""Fetch a published record through repo2docker's own content providers.

repo2docker (and so BinderHub) builds Zenodo, Figshare, Dataverse, Hydroshare and CKAN
records and Software Heritage objects; its content providers (`repo2docker.
contentproviders`, the `jupyter-repo2docker` package used as a library, never its build)
know each service's API, so a record fetched here holds the same files as one repo2docker
fetches. What this module adds around them:

- Only what names a record gets here (`spec` decides: a DOI, a record URL, a SWHID, a
  `zenodo:`-style spelling); a git URL, a shorthand or a directory never asks a provider,
  so it needs no record service.
- DOIs are resolved here, through the DOI handle API repo2docker itself uses
  (`RESOLVER/api/handles/DOI`), with PANGEO_BINDER_DOI_RESOLVER as the resolver, and the
  providers are given the record URL it names: a DOI nobody registered is one clear line,
  not a guess.
- The Dataverse provider recognises a record by its host among the Dataverse
  installations, a list it would download at every detection; it gets pangeo-binder's
  copy instead (dataverse_installations.json, refreshed by
  scripts/update-dataverse-hosts), so recognising a record asks nothing of the network.
- PANGEO_BINDER_CONTENT_HOSTS (`zenodo=URL,figshare=URL,dataverse=URL,swh=URL`) adds
  an instance of a service, a private Zenodo (an InvenioRDM) for example, or a test's
  stand-in, through the providers' own public settings (`hosts`, `base_url`).
- The record is untrusted: a listing that names a file outside the record (an absolute
  path, a `..`) is refused before anything is written, tar archives are unpacked with
  Python's `data` filter, a URL it names inside this machine's network is not fetched
  (unless its host is one the operator named), every request has a timeout, and
  Hydroshare's provider, which writes ./temp, runs in the temporary directory. The
  checkout then reads only what is inside its directory (`fetch`).
- Any failure (an unknown record, a service that does not answer, a host name that does
  not resolve, a DOI that resolves to no known service) is a SourceError naming the
  record and the cause in one line.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
import socket
import ssl
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from ..errors import PangeoBinderError, SourceError
from ..events import Emit, Event, Phase
from ..spec import RecordSource, content_hosts, without_credentials

DOI_RESOLVER_VARIABLE = "PANGEO_BINDER_DOI_RESOLVER"
DEFAULT_DOI_RESOLVER = "https://doi.org"
# The providers tried for a DOI or URL of no known service, in repo2docker's order.
PROVIDER_ORDER = ("zenodo", "figshare", "hydroshare", "dataverse", "ckan", "swh")
# JSON keys under which the services' listings name a record's files.
_FILE_NAME_KEYS = frozenset({"key", "name", "filename", "label", "directoryLabel",
                             "originalFileName"})
# Seconds a service may take to answer one request (repo2docker's providers set none).
_TIMEOUT = 60
_ONE_AT_A_TIME = threading.Lock()
DATAVERSE_INSTALLATIONS = Path(__file__).with_name("dataverse_installations.json")


@dataclass(frozen=True)
class FetchedRecord:
    revision: str  # the record's version as its provider names it (Zenodo: the record id)
    source_url: str  # the record's URL, or its SWHID


def doi_resolver() -> str:
    return (os.environ.get(DOI_RESOLVER_VARIABLE) or DEFAULT_DOI_RESOLVER).rstrip("/")


def resolve_doi(doi: str) -> str:
    """The URL a DOI is registered for (the handle API's first URL value)."""
    import requests

    url = f"{doi_resolver()}/api/handles/{doi}"
    try:
        response = requests.get(url, headers={"accept": "application/json"},
                                timeout=_TIMEOUT)
    except requests.RequestException as exc:
        raise SourceError(f"cannot look up DOI {doi}: {_why(exc)}") from None
    if response.status_code == 404:
        raise SourceError(f"DOI {doi} is not registered ({doi_resolver()} does not know it)")
    if response.status_code != 200:
        raise SourceError(f"cannot resolve DOI {doi}: {url} answered {response.status_code}")
    try:
        values = response.json().get("values", [])
        target = next(v["data"]["value"] for v in values if v.get("type") == "URL")
    except (ValueError, AttributeError, KeyError, TypeError, StopIteration):
        raise SourceError(f"DOI {doi} names no URL ({doi_resolver()})") from None
    return str(target)


def _invenio_host(base: str) -> dict[str, Any]:
    """A Zenodo-style (InvenioRDM) instance, described as repo2docker's Zenodo provider
    describes zenodo.org."""
    return {"hostname": [f"{base}/record/", f"{base}/records/"],
            "api": f"{base}/api/records/", "files": "links.files", "filepath": "entries",
            "filename": "key", "download": "links.content", "type": "metadata.upload_type"}


def _figshare_host(base: str) -> dict[str, Any]:
    return {"hostname": [f"{base}/articles/"], "api": f"{base}/v2/articles/",
            "filepath": "files", "filename": "name", "download": "download_url"}


def _providers(wanted: str | None, refused: list[str]) -> list[tuple[str, Any]]:
    """repo2docker's providers, configured with the content hosts; `refused` collects the
    requests their services refused."""
    try:
        from repo2docker import contentproviders as cp
    except ImportError:
        raise SourceError("fetching a record needs the jupyter-repo2docker package "
                          "(pangeo-binder's dependency), which is not installed") from None

    classes = {"zenodo": cp.Zenodo, "figshare": cp.Figshare, "hydroshare": cp.Hydroshare,
               "dataverse": cp.Dataverse, "ckan": cp.CKAN, "swh": cp.Swhid}
    hosts = content_hosts()
    trusted = _trusted_netlocs(hosts)
    made = []
    for name in PROVIDER_ORDER if wanted is None else (wanted,):
        provider = classes[name]()
        bases = [base for host, base in hosts if host == name]
        if name == "zenodo":
            provider.hosts = [_invenio_host(b) for b in bases] + provider.hosts
        elif name == "figshare":
            provider.hosts = [_figshare_host(b) for b in bases] + provider.hosts
        elif name == "dataverse":
            # Set, its host list is never downloaded (at every detect() otherwise).
            provider.hosts = ([{"hostname": urlsplit(b).netloc} for b in bases]
                              + list(dataverse_installations()))
        elif name == "swh" and bases:
            provider.base_url = f"{bases[-1]}/api/1"
        if session := getattr(provider, "session", None):
            session.hooks["response"].append(functools.partial(_check_listing, refused))
            for scheme in ("http://", "https://"):
                session.mount(scheme, _bounded_adapter(trusted))
        made.append((name, provider))
    return made


@functools.cache
def dataverse_installations() -> tuple[dict[str, str], ...]:
    """The Dataverse installations pangeo-binder ships, as repo2docker's provider takes
    them (it matches a URL's host against each `hostname`)."""
    return tuple(json.loads(DATAVERSE_INSTALLATIONS.read_text())["installations"])


def _trusted_netlocs(hosts: tuple[tuple[str, str], ...]) -> frozenset[str]:
    """The hosts the operator named (content hosts, the DOI resolver): the only ones that
    may be inside this machine's network."""
    return frozenset(urlsplit(base).netloc for base in
                     (doi_resolver(), *(base for _, base in hosts)))


def _inside_network(host: str) -> bool:
    """Whether `host` is, or resolves to, a loopback, private, link-local (the cloud
    metadata service) or otherwise non-public address."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False  # the request itself will fail, with the reason
    return any(not ipaddress.ip_address(info[4][0].split("%")[0]).is_global for info in infos)


def _bounded_adapter(trusted: frozenset[str]) -> Any:
    """requests' transport for the providers: a timeout for every request that names none,
    and no request inside this machine's network but to the hosts the operator named. A
    record names the URLs of its files (a CKAN resource may point anywhere): followed
    blindly from a build pod, http://169.254.169.254/ would put the cloud's credentials
    into the image."""
    from requests.adapters import HTTPAdapter

    class Bounded(HTTPAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            parts = urlsplit(request.url)
            if parts.netloc not in trusted and _inside_network(parts.hostname or ""):
                raise SourceError(f"the record names {without_credentials(request.url)}, "
                                  "inside this network: refused")
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = _TIMEOUT
            return super().send(request, **kwargs)

    return Bounded()


def _unsafe_name(value: object) -> str | None:
    """A file name in a service's JSON that would land outside the record."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _FILE_NAME_KEYS and isinstance(item, str):
                path = PurePosixPath(item.replace("\\", "/"))
                if path.is_absolute() or ".." in path.parts:
                    return item
            elif (found := _unsafe_name(item)) is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            if (found := _unsafe_name(item)) is not None:
                return found
    return None


def _check_listing(refused: list[str], response: Any, *args: object, **kwargs: object) -> Any:
    """A requests response hook on each provider's session: remember the last request the
    service refused (a provider reports it as a missing key), and refuse a listing that
    names a file outside the record before the provider writes it."""
    if response.status_code >= 400:
        refused.append(f"{response.url} answered {response.status_code} {response.reason}")
    elif "json" in response.headers.get("content-type", ""):
        try:
            data = response.json()
        except ValueError:
            return response
        if (name := _unsafe_name(data)) is not None:
            raise SourceError(f"the record names a file outside itself: {name!r} "
                              f"({response.url})")
    return response


@contextlib.contextmanager
def _contained(scratch: Path, provider: str) -> Iterator[None]:
    """Tar archives (Software Heritage's) unpack with the `data` filter: no links out, no
    devices. Hydroshare's provider unpacks into ./temp and then deletes ./temp, so it runs
    in `scratch`, never in the user's directory. Both are process-wide, so one record is
    fetched at a time (a workshop builds several sources at once, in threads)."""
    with _ONE_AT_A_TIME:
        previous = tarfile.TarFile.extraction_filter
        tarfile.TarFile.extraction_filter = staticmethod(tarfile.data_filter)
        try:
            with contextlib.chdir(scratch) if provider == "hydroshare" else (
                    contextlib.nullcontext()):
                yield
        finally:
            tarfile.TarFile.extraction_filter = previous


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    detail = text[0] if text else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps: requests wraps urllib3's errors, which wrap the socket's."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        pending += [e for e in (error.__cause__, error.__context__, getattr(error, "reason", None),
                                *error.args) if isinstance(e, BaseException)]


def _why(exc: BaseException) -> str:
    """Why a request failed, in a few words and naming the host: the socket's reason at
    the bottom of requests' and urllib3's wrappers (whose own text is a paragraph of
    object reprs), else the exception's first line."""
    import requests

    request = getattr(exc, "request", None)
    host = urlsplit(request.url).netloc.rpartition("@")[2] if request is not None else ""
    if not host or not isinstance(exc, requests.RequestException):
        return _reason(exc)
    if isinstance(exc, requests.Timeout):
        return f"{host} did not answer within {_TIMEOUT} s"
    causes = list(_causes(exc))
    if any(isinstance(e, socket.gaierror) for e in causes):
        return f"cannot resolve host {urlsplit(request.url).hostname}"
    if any(isinstance(e, ConnectionRefusedError) for e in causes):
        return f"{host} refused the connection"
    if tls := next((e for e in causes if isinstance(e, ssl.SSLError)), None):
        return f"TLS with {host} failed ({tls.reason or type(tls).__name__})"
    if isinstance(exc, requests.ConnectionError):
        return f"cannot connect to {host}"
    return _reason(exc)


def fetch_record(source: RecordSource, dest: Path, emit: Emit) -> FetchedRecord:
    """Fetch `source`'s files into the empty directory `dest`."""
    url = resolve_doi(source.spec) if source.spec.startswith("10.") else source.spec
    if url != source.spec:
        emit(Event(Phase.FETCHING, f"{source.spec} is {url}"))
    dest.mkdir(parents=True, exist_ok=True)
    refused: list[str] = []
    try:
        for name, provider in _providers(source.provider, refused):
            with _contained(dest.parent, name):
                spec = provider.detect(url)
                if spec is None:
                    continue
                emit(Event(Phase.FETCHING, f"Fetching {source.display} from {name}"))
                for line in provider.fetch(spec, str(dest), yield_output=True):
                    if line.strip():
                        emit(Event(Phase.FETCHING, without_credentials(line.strip())))
                revision = str(provider.content_id)
            return FetchedRecord(revision=revision, source_url=url)
    except PangeoBinderError:
        raise
    except Exception as exc:  # the providers' failures: HTTP, JSON, archives, I/O
        reason = refused[-1] if refused else _why(exc)
        raise SourceError(without_credentials(f"cannot fetch {source.display}: {reason}")
                          ) from None
    known = source.provider or "/".join(PROVIDER_ORDER)
    raise SourceError(f"{source.display} is no record of {known} (it names {url})")
