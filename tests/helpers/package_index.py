"""A small PEP 503 package index for tests, with real wheels made here, that can show its
clients different views of one project: as two mirrors, caches or front ends of one
index do when one of them has not seen the newest upload yet."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import threading
import zipfile
from collections.abc import Callable


def make_wheel(project: str, version: str, module: str) -> tuple[str, bytes]:
    """A pure-Python wheel of `project` whose `module` says its version."""
    dist = f"{project.replace('-', '_')}-{version}"
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{dist}.dist-info/METADATA":
            f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n".encode(),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: pangeo-binder-tests\n"
                                   b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip('=')},"
        f"{len(data)}\n" for name, data in files.items()) + f"{dist}.dist-info/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr(f"{dist}.dist-info/RECORD", record)
    return f"{dist}-py3-none-any.whl", buffer.getvalue()


class PackageIndex(http.server.ThreadingHTTPServer):
    """Serves /simple/PROJECT/ and the wheels under /files/. `view(n)` gives the file
    names the project page lists to its n-th request (from 1); every other project is
    404, so clients fall through to their other indexes. `page_requests` counts the
    project page's requests."""

    def __init__(self, host: str, project: str, wheels: dict[str, bytes],
                 view: Callable[[int], list[str]]) -> None:
        self.project, self.wheels, self.view = project, wheels, view
        self.page_requests = 0
        self._count = threading.Lock()
        super().__init__((host, 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/simple/"

    def page(self) -> bytes:
        with self._count:
            self.page_requests += 1
            listed = self.view(self.page_requests)
        links = "".join(
            f'<a href="/files/{name}#sha256={hashlib.sha256(self.wheels[name]).hexdigest()}">'
            f"{name}</a>\n" for name in listed)
        return f"<!DOCTYPE html><html><body>\n{links}</body></html>\n".encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: PackageIndex

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:  # uv asks a file's size (and range support) first
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        path = self.path.split("?")[0]
        if path.rstrip("/") == f"/simple/{self.server.project}":
            self._send(self.server.page() if body else b"", "text/html", body)
        elif path.startswith("/files/") and path[7:] in self.server.wheels:
            self._send(self.server.wheels[path[7:]], "application/octet-stream", body)
        else:
            self.send_error(404)

    def _send(self, data: bytes, content_type: str, body: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass
