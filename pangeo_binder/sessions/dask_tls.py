"""Each session's Dask credentials: a key and a self-signed certificate made for that
session alone, and the secret path its schedulers' dashboards answer under, kept in a
Secret of the user's namespace.

The certificate is also the only CA the session's schedulers and workers trust, so they
accept connections from the session (and from each other) and refuse everyone else's,
whatever network path a stranger finds to them; the dashboard path does the same for a
scheduler's HTTP port. The Secret is read by the kubelet for the session pod and the
Dask pods (environment variables, `tls_env`) and by the Dask operator; no user's
ServiceAccount may read Secrets.
"""

from __future__ import annotations

import base64
import datetime
import secrets

from ..dask_operator.contract import DASHBOARD_PREFIX_KEY, DASK_TLS_SECRET
from ..kube import kubernetes_errors

VALIDITY = datetime.timedelta(days=365)


def make_credentials(namespace: str) -> dict[str, str]:
    """A new key and self-signed certificate (PEM) for the Dask clusters of `namespace`,
    and their dashboards' secret path."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"dask.{namespace}")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"dask.{namespace}")]),
                       critical=False)
        .sign(key, hashes.SHA256()))
    return {
        "tls.crt": certificate.public_bytes(serialization.Encoding.PEM).decode(),
        "tls.key": key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode(),
        DASHBOARD_PREFIX_KEY: dashboard_prefix(),
    }


def dashboard_prefix() -> str:
    """A path no one guesses: 128 random bits, URL-safe."""
    return secrets.token_hex(16)


def ensure_credentials(api, namespace: str, labels: dict[str, str]) -> None:
    """The namespace's Dask credentials Secret, made once: running clusters keep theirs
    (and no key is made when it exists)."""
    from kr8s.objects import Secret

    def encoded(value: str) -> str:
        return base64.b64encode(value.encode()).decode()

    with kubernetes_errors(f"cannot make the Dask credentials of {namespace}"):
        existing = Secret(DASK_TLS_SECRET, namespace=namespace, api=api)
        if existing.exists():
            existing.refresh()
            if DASHBOARD_PREFIX_KEY not in (existing.raw.get("data") or {}):
                # Made before dashboards had a secret path.
                existing.patch({"data": {DASHBOARD_PREFIX_KEY: encoded(dashboard_prefix())}})
            return
        Secret({"metadata": {"name": DASK_TLS_SECRET, "namespace": namespace,
                             "labels": labels},
                "type": "kubernetes.io/tls",
                "data": {k: encoded(v) for k, v in make_credentials(namespace).items()}},
               api=api).create()
