"""A stand-in for the record services, which cannot be reached from here: one loopback
HTTP server (127.0.0.1, an ephemeral port, in a thread) that answers as their documented
APIs do, with real archives:

- the DOI resolver's handle API: GET /doi/api/handles/DOI (doi.org's proxy REST API);
- Zenodo (InvenioRDM): GET /zenodo/api/records/ID, its files listing
  /zenodo/api/records/ID/files ({"entries": [{"key", "links": {"content"}}]}) and each
  file's content;
- Figshare: GET /figshare/v2/articles/ID/versions/V ({"files": [{"name", "download_url",
  "is_link_only"}]});
- Dataverse, at the server's root: /api/datasets/:persistentId?persistentId=doi:...
  ({"data": {"latestVersion": {"files": [...]}}}) and /api/access/datafile/ID;
- CKAN: /ckan/api/3/action/status_show and package_show?id=NAME;
- Software Heritage: the vault, /swh/api/1/vault/directory/HASH/ (POST cooks, GET says
  done), and the cooked tar.gz.

`env()` gives the pangeo-binder settings that point repo2docker's providers here. Anything
not registered answers 404, as the services do for an unknown record.
"""

from __future__ import annotations

import http.server
import io
import json
import tarfile
import threading
import time
import urllib.parse
import zipfile
from collections.abc import Mapping

Files = Mapping[str, bytes]
STALL = 5  # seconds a stalled path keeps its client waiting


def zip_of(files: Files, top: str = "") -> bytes:
    """A zip of `files`, under the directory `top` as GitHub's release archives are."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in sorted(files.items()):
            archive.writestr(f"{top}/{name}" if top else name, data)
    return out.getvalue()


def tar_gz_of(files: Files, top: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


class RecordsStandIn(http.server.ThreadingHTTPServer):
    """The services' stand-in; register records with the add_* methods."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.base = f"http://127.0.0.1:{self.server_port}"
        self.dois: dict[str, str] = {}
        self.blobs: dict[str, tuple[str, bytes]] = {}  # path -> (content type, body)
        self.json: dict[str, object] = {}  # path (with query) -> JSON body
        self.requests: list[str] = []
        self.stalled: set[str] = set()  # paths answered only after STALL seconds
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)

    def env(self) -> dict[str, str]:
        return {
            "PANGEO_BINDER_DOI_RESOLVER": f"{self.base}/doi",
            "PANGEO_BINDER_CONTENT_HOSTS": f"zenodo={self.base}/zenodo,"
                                           f"figshare={self.base}/figshare,"
                                           f"dataverse={self.base},swh={self.base}/swh",
        }

    def add_doi(self, doi: str, url: str) -> None:
        self.dois[doi.lower()] = url

    def add_zenodo(self, record_id: int, files: Mapping[str, bytes],
                   doi: str | None = None) -> str:
        """A Zenodo record holding `files` (key -> bytes); returns its URL."""
        api = f"{self.base}/zenodo/api/records/{record_id}"
        entries = []
        for key, data in files.items():
            content = f"{api}/files/{urllib.parse.quote(key, safe='')}/content"
            self.blobs[urllib.parse.urlsplit(content).path] = ("application/octet-stream",
                                                               data)
            entries.append({"key": key, "size": len(data), "links": {"content": content}})
        self.json[f"/zenodo/api/records/{record_id}"] = {
            "id": record_id, "doi": doi or f"10.5281/zenodo.{record_id}",
            "links": {"self": api, "files": f"{api}/files",
                      "self_html": f"{self.base}/zenodo/records/{record_id}"},
            "metadata": {"title": "A notebook repository", "upload_type": "software"},
        }
        self.json[f"/zenodo/api/records/{record_id}/files"] = {"enabled": True,
                                                               "entries": entries}
        url = f"{self.base}/zenodo/records/{record_id}"
        self.add_doi(doi or f"10.5281/zenodo.{record_id}", url)
        return url

    def add_figshare(self, article_id: int, version: int, files: Mapping[str, bytes]) -> str:
        listing = []
        for index, (name, data) in enumerate(files.items()):
            path = f"/figshare/ndownloader/files/{article_id}{version}{index}"
            self.blobs[path] = ("application/octet-stream", data)
            listing.append({"id": index, "name": name, "size": len(data),
                            "is_link_only": False, "download_url": self.base + path})
        self.json[f"/figshare/v2/articles/{article_id}/versions/{version}"] = {
            "id": article_id, "version": version, "files": listing}
        url = f"{self.base}/figshare/articles/code/notebooks/{article_id}/{version}"
        self.add_doi(f"10.6084/m9.figshare.{article_id}.v{version}", url)
        return url

    def add_dataverse(self, persistent_id: str, files: Mapping[str, bytes]) -> str:
        listing = []
        for index, (name, data) in enumerate(files.items(), start=1):
            directory, _, label = name.rpartition("/")
            self.blobs[f"/api/access/datafile/{index}"] = ("application/octet-stream", data)
            entry = {"label": label, "dataFile": {"id": index, "filename": label}}
            if directory:
                entry["directoryLabel"] = directory
            listing.append(entry)
        query = f"persistentId={persistent_id}"  # as repo2docker asks, unescaped
        self.json[f"/api/datasets/:persistentId?{query}"] = {
            "status": "OK", "data": {"id": 1, "latestVersion": {"files": listing}}}
        return f"{self.base}/dataset.xhtml?{query}"

    def add_ckan(self, name: str, files: Mapping[str, bytes]) -> str:
        resources = []
        for index, (filename, data) in enumerate(files.items()):
            path = f"/ckan/dataset/{name}/resource/{index}/download/{filename}"
            self.blobs[path] = ("application/octet-stream", data)
            resources.append({"id": str(index), "url": self.base + path})
        self.json["/ckan/api/3/action/status_show"] = {"success": True,
                                                       "result": {"ckan_version": "2.10"}}
        self.json[f"/ckan/api/3/action/package_show?id={name}"] = {
            "success": True, "result": {"name": name, "resources": resources,
                                        "metadata_modified": "2026-11-02T10:00:00.000000"}}
        return f"{self.base}/ckan/dataset/{name}"

    def add_swh_directory(self, dir_hash: str, files: Mapping[str, bytes]) -> str:
        vault = f"/swh/api/1/vault/directory/{dir_hash}/"
        fetch = f"{vault}raw/"
        self.json[vault] = {"status": "done", "fetch_url": self.base + fetch}
        self.blobs[fetch] = ("application/gzip", tar_gz_of(files, dir_hash))
        return f"swh:1:dir:{dir_hash}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: RecordsStandIn

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:  # the vault's "cook this directory"
        self._answer()

    def _answer(self) -> None:
        self.server.requests.append(f"{self.command} {self.path}")
        path = urllib.parse.urlsplit(self.path).path
        if path in self.server.stalled:
            time.sleep(STALL)
        if path.startswith("/doi/api/handles/"):
            doi = urllib.parse.unquote(path.removeprefix("/doi/api/handles/")).lower()
            if doi in self.server.dois:
                return self._send_json(200, {"responseCode": 1, "handle": doi, "values": [
                    {"index": 1, "type": "URL",
                     "data": {"format": "string", "value": self.server.dois[doi]}}]})
            return self._send_json(404, {"responseCode": 100, "handle": doi})
        if self.path in self.server.json:
            return self._send_json(200, self.server.json[self.path])
        if path in self.server.blobs:
            kind, body = self.server.blobs[path]
            return self._send(200, kind, body)
        return self._send_json(404, {"status": 404, "message": "not found"})

    def _send_json(self, status: int, body: object) -> None:
        self._send(status, "application/json", json.dumps(body).encode())

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass
