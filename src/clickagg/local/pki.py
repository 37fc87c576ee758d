"""Certificates and keys of the local control plane, generated once and renewed early.

A CA, a serving certificate for 127.0.0.1 and localhost, an admin client certificate in
`system:masters`, and the service-account key pair, all under the run directory.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from clickagg.local import cache

# The first address of the service range is the `kubernetes` Service's ClusterIP.
KUBERNETES_SERVICE_IP = "10.0.0.1"
ADMIN_USER = "clickagg-admin"

_CERT_VALIDITY = datetime.timedelta(days=365)

# Regenerate certificates this long before they expire, so a running stack never expires.
_CERT_RENEW_MARGIN = datetime.timedelta(days=7)


@dataclass(frozen=True)
class Pki:
    """Paths of the generated certificates and keys."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path


def paths() -> Pki:
    """Where the certificates and keys of the local control plane live."""
    pki = cache.run_dir("kube") / "pki"
    pki.mkdir(exist_ok=True)
    return Pki(
        ca_cert=pki / "ca.crt",
        ca_key=pki / "ca.key",
        serving_cert=pki / "apiserver.crt",
        serving_key=pki / "apiserver.key",
        admin_cert=pki / "admin.crt",
        admin_key=pki / "admin.key",
        sa_key=pki / "sa.key",
        sa_pub=pki / "sa.pub",
    )


def ensure() -> Pki:
    """The CA, serving cert, admin client cert and service-account keys; reused if valid."""
    pki = paths()
    if _pki_complete(pki):
        return pki
    ca_key = _new_key()
    ca_cert = _ca_certificate(ca_key)
    _write_key(pki.ca_key, ca_key)
    _write_cert(pki.ca_cert, ca_cert)
    serving_key = _new_key()
    _write_key(pki.serving_key, serving_key)
    _write_cert(pki.serving_cert, _serving_certificate(serving_key, ca_cert, ca_key))
    admin_key = _new_key()
    _write_key(pki.admin_key, admin_key)
    _write_cert(pki.admin_cert, _admin_certificate(admin_key, ca_cert, ca_key))
    sa_key = _new_key()
    _write_key(pki.sa_key, sa_key)
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


def client_certificate(pki_dir: Path, user: str, groups: Sequence[str] = ()) -> tuple[bytes, bytes]:
    """PEM certificate and key for another user of the local API server (RBAC tests),
    signed by the CA in `pki_dir` (the `pki` folder beside a stack's kubeconfig)."""
    ca_key = serialization.load_pem_private_key((pki_dir / "ca.key").read_bytes(), password=None)
    if not isinstance(ca_key, rsa.RSAPrivateKey):
        raise TypeError(f"{pki_dir / 'ca.key'} is not an RSA key")
    ca_cert = x509.load_pem_x509_certificate((pki_dir / "ca.crt").read_bytes())
    key = _new_key()
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, user)]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    cert = _leaf(key, ca_cert, ca_key, x509.Name(attributes), ExtendedKeyUsageOID.CLIENT_AUTH, None)
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _pki_complete(pki: Pki) -> bool:
    paths = [getattr(pki, field) for field in pki.__dataclass_fields__]
    if not all(path.exists() for path in paths):
        return False
    renew_after = datetime.datetime.now(datetime.UTC) + _CERT_RENEW_MARGIN
    for cert_path in (pki.ca_cert, pki.serving_cert, pki.admin_cert):
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.not_valid_after_utc < renew_after:
            return False
    return True


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    write_private(path, _key_pem(key))


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private(path: Path, data: bytes) -> None:
    """Write a secret readable only by its owner (helm and kubectl warn otherwise)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _CERT_VALIDITY)
    )


def _ca_certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = _name("clickagg-local-ca")
    return (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _serving_certificate(
    key: rsa.RSAPrivateKey, ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey
) -> x509.Certificate:
    dns_names = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    ips = ["127.0.0.1", KUBERNETES_SERVICE_IP]
    san = x509.SubjectAlternativeName(
        [x509.DNSName(n) for n in dns_names]
        + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    )
    return _leaf(
        key, ca_cert, ca_key, _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, san
    )


def _admin_certificate(
    key: rsa.RSAPrivateKey, ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey
) -> x509.Certificate:
    # O=system:masters is the group RBAC binds to cluster-admin.
    subject = _name(ADMIN_USER, "system:masters")
    return _leaf(key, ca_cert, ca_key, subject, ExtendedKeyUsageOID.CLIENT_AUTH, None)


def _leaf(
    key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    san: x509.SubjectAlternativeName | None,
) -> x509.Certificate:
    builder = (
        _builder(subject, ca_cert.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
