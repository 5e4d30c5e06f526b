"""A private git server on loopback for tests: git's own smart HTTP backend
(git-http-backend, run as CGI) behind HTTP basic auth, as a private GitLab or GitHub
repository answers a clone."""

from __future__ import annotations

import base64
import http.server
import os
import subprocess
import threading
from pathlib import Path

GIT_HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"


class PrivateGitServer(http.server.ThreadingHTTPServer):
    """Serves the bare repositories under `root` at http://HOST:PORT/NAME.git to
    requests that carry `user`:`password`; everything else gets 401. Without a user it
    is a public server, as a public GitHub repository answers a clone; `host` may be the
    Docker bridge's gateway, where containers and builds reach it."""

    def __init__(self, root: Path, user: str | None = None, password: str | None = None,
                 host: str = "127.0.0.1") -> None:
        self.root = root
        self.expected = (None if user is None else
                         "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        self.unauthorized = 0
        self.host = host
        super().__init__((host, 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, name: str, credentials: str = "") -> str:
        at = f"{credentials}@" if credentials else ""
        return f"http://{at}{self.host}:{self.server_port}/{name}.git"

    def add(self, name: str, worktree: Path) -> None:
        """Publish the git repository at `worktree` as NAME.git."""
        bare = self.root / f"{name}.git"
        subprocess.run(["git", "clone", "--quiet", "--bare", str(worktree), str(bare)],
                       check=True, capture_output=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: PrivateGitServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        expected = self.server.expected
        if expected is not None and self.headers.get("Authorization") != expected:
            self.server.unauthorized += 1
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="private"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {**os.environ, "GIT_PROJECT_ROOT": str(self.server.root),
               "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path, "QUERY_STRING": query,
               "REQUEST_METHOD": self.command, "REMOTE_USER": "test",
               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body)),
               "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
        out = subprocess.run([GIT_HTTP_BACKEND], input=body, env=env, capture_output=True,
                             check=False).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass
