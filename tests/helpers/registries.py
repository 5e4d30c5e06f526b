"""Registries behind auth on loopback, for tests: the real registry (Debian's
docker-registry, distribution v2, as scripts/setup-registry runs the open one) with
htpasswd basic auth, or with `auth: token` and `TokenIssuer`, a test stand-in for
Docker Hub's auth service (auth.docker.io), which cannot be reached here."""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

USER = "binder"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def require(command: str) -> str:
    """A command scripts/setup-registry installs (a test that runs one uses the
    `local_registry` fixture, so it is skipped, or failed, when one is missing)."""
    path = shutil.which(command)
    assert path is not None, f"{command} is missing: scripts/setup-registry installs it"
    return path


class Registry:
    """docker-registry serving on 127.0.0.1:PORT with the given `auth` section."""

    def __init__(self, root: Path, auth: str) -> None:
        self.root = root
        self.port = _free_port()
        root.mkdir(parents=True, exist_ok=True)
        (root / "config.yml").write_text(f"""\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}/data
http:
  addr: 127.0.0.1:{self.port}
  secret: {secrets.token_hex(16)}
auth:
{auth}""")
        self.log = (root / "registry.log").open("wb")
        self.process = subprocess.Popen(
            [require("docker-registry"), "serve", str(root / "config.yml")],
            stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(80):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/", timeout=1)
            except urllib.error.HTTPError:
                return  # it answers (401: it wants credentials)
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"the registry did not start; see {root}/registry.log")

    @property
    def host(self) -> str:
        """What image names start with; loopback, so the engine speaks plain HTTP."""
        return f"localhost:{self.port}"

    def challenge(self) -> str:
        """The WWW-Authenticate header of an anonymous request."""
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/", timeout=5)
        except urllib.error.HTTPError as error:
            return error.headers.get("WWW-Authenticate", "")
        return ""

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


def htpasswd_registry(root: Path, password: str) -> Registry:
    """A registry that lets USER:password in with basic auth (bcrypt htpasswd)."""
    line = subprocess.run([require("htpasswd"), "-iBn", USER], input=password, text=True,
                          capture_output=True, check=True).stdout.strip()
    root.mkdir(parents=True, exist_ok=True)
    (root / "htpasswd").write_text(line + "\n")
    return Registry(root, f"  htpasswd:\n    realm: test\n    path: {root}/htpasswd\n")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer(http.server.ThreadingHTTPServer):
    """Hands out registry tokens as Docker Hub's auth service does: GET /token?service=
    &scope= with basic auth (or POST with a password grant) answers {"token": JWT} whose
    `access` grants the scopes asked for; a request without credentials gets a token
    granting nothing, and wrong credentials get 401. The JWT is RS256, signed by a key
    whose self-signed certificate the registry trusts (`rootcertbundle`)."""

    issuer = "pangeo-binder-test-issuer"
    service = "pangeo-binder-test-registry"

    def __init__(self, root: Path, password: str) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.issuer)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        root.mkdir(parents=True, exist_ok=True)
        self.bundle = root / "issuer.pem"
        self.bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.expected = "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()
        self.password = password
        self.granted = 0  # tokens with access, after checking the credentials
        self.anonymous = 0
        self.refused = 0
        super().__init__(("127.0.0.1", 0), _TokenHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/token"

    def auth_config(self) -> str:
        """The registry's `auth:` section that trusts this issuer."""
        return (f"  token:\n    realm: {self.realm}\n    service: {self.service}\n"
                f"    issuer: {self.issuer}\n    rootcertbundle: {self.bundle}\n")

    def token(self, subject: str, scopes: list[str]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8), "access": access}
        signed = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signed}.{_b64url(signature)}"


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    server: TokenIssuer

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        self._answer(self.headers.get("Authorization"), query.get("scope", []))

    def do_POST(self) -> None:  # OAuth2 password grant, which engines may use instead
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        form = urllib.parse.parse_qs(body)
        user, password = form.get("username", [""])[0], form.get("password", [""])[0]
        basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._answer(basic if user else None, " ".join(form.get("scope", [])).split())

    def _answer(self, authorization: str | None, scopes: list[str]) -> None:
        if authorization is None:
            self.server.anonymous += 1
            token = self.server.token("", [])
        elif authorization != self.server.expected:
            self.server.refused += 1
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        else:
            self.server.granted += 1
            token = self.server.token(USER, scopes)
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def token_registry(root: Path, password: str) -> tuple[Registry, TokenIssuer]:
    """A registry with `auth: token`, and the issuer it trusts."""
    issuer = TokenIssuer(root / "issuer", password)
    return Registry(root / "registry", issuer.auth_config()), issuer
