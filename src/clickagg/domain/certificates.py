"""A self-signed CA and a serving certificate for named hosts, renewed before expiry.

The operator's webhook serves with them: the API server verifies the webhook against the
configuration's caBundle, so the CA outlives many serving certificates: a renewed serving
certificate keeps the caBundle as it is, and a renewed CA is trusted next to the old one
until the old one expires, so no request fails while the caBundle is being patched. The
local SolrCloud's TLS uses them too (`ensure(None, node hosts, ca_name=...)`), as Java's
PKCS12 key store and trust store (`pkcs12_keystore`, `pkcs12_truststore`).

Pure: the caller stores the result.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_LIFETIME = dt.timedelta(days=3650)
CA_RENEW_BEFORE = dt.timedelta(days=365)
SERVING_LIFETIME = dt.timedelta(days=365)
SERVING_RENEW_BEFORE = dt.timedelta(days=30)
# Clocks of the API server and the operator may differ a little.
_BACKDATE = dt.timedelta(minutes=5)
WEBHOOK_CA_NAME = "clickagg-webhook-ca"
_KEYS = ("ca.crt", "ca.key", "tls.crt", "tls.key", "bundle.crt")


@dataclass(frozen=True)
class Certificates:
    """PEM bytes: the CA and its key, the serving pair, and the caBundle to publish."""

    ca_cert: bytes
    ca_key: bytes
    cert: bytes
    key: bytes
    ca_bundle: bytes

    def secret_data(self) -> dict[str, str]:
        """As the base64 `data` of a Secret."""
        values = (self.ca_cert, self.ca_key, self.cert, self.key, self.ca_bundle)
        pairs = zip(_KEYS, values, strict=True)
        return {key: base64.b64encode(value).decode() for key, value in pairs}

    @classmethod
    def from_secret_data(cls, data: Mapping[str, str] | None) -> Certificates | None:
        """What a Secret holds, or None when it holds no complete set."""
        if not data or any(key not in data for key in _KEYS):
            return None
        ca_cert, ca_key, cert, key, bundle = (base64.b64decode(data[key]) for key in _KEYS)
        return cls(ca_cert, ca_key, cert, key, bundle)

    def renew_at(self) -> dt.datetime:
        """When `ensure` would first replace something."""
        return min(
            _certificate(self.ca_cert).not_valid_after_utc - CA_RENEW_BEFORE,
            _certificate(self.cert).not_valid_after_utc - SERVING_RENEW_BEFORE,
        )


def ensure(
    previous: Certificates | None,
    hosts: Sequence[str],
    now: dt.datetime | None = None,
    *,
    ca_name: str = WEBHOOK_CA_NAME,
) -> Certificates:
    """`previous` when it still serves `hosts` for a while; otherwise renewed certificates.

    `hosts` are the serving certificate's subject alternative names (IP addresses or DNS
    names), the first also its common name; `ca_name` is a new CA's common name."""
    now = now or dt.datetime.now(dt.UTC)
    ca_usable = previous is not None and _lasts(previous.ca_cert, now, CA_RENEW_BEFORE)
    if previous is not None and ca_usable:
        serving_usable = _lasts(previous.cert, now, SERVING_RENEW_BEFORE)
        if serving_usable and _hosts_of(previous.cert) == _canonical(hosts):
            return previous
        ca_cert, ca_key = previous.ca_cert, previous.ca_key
    else:
        ca_cert, ca_key = _new_ca(now, ca_name)
    cert, key = _new_serving(ca_cert, ca_key, hosts, now)
    older = _split_pem(previous.ca_bundle) if previous is not None else []
    still_trusted = [pem for pem in older if pem != ca_cert and _lasts(pem, now, dt.timedelta())]
    return Certificates(ca_cert, ca_key, cert, key, b"".join([ca_cert, *still_trusted]))


def pkcs12_keystore(certs: Certificates, alias: str, password: str) -> bytes:
    """A PKCS12 key store (what Java and Jetty read) with the serving key and its chain
    (serving certificate, then the CA), encrypted with `password` (AES-256, PBKDF2)."""
    key = serialization.load_pem_private_key(certs.key, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the serving key is not an EC key")
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode("utf-8"))
    )
    return pkcs12.serialize_key_and_certificates(
        alias.encode("utf-8"), key, _certificate(certs.cert), [_certificate(certs.ca_cert)],
        encryption,
    )  # fmt: skip


def pkcs12_truststore(ca_bundle: bytes) -> bytes:
    """A PKCS12 trust store of the CAs in `ca_bundle`, marked as trusted for Java (a PKCS12
    certificate without Java's trusted-usage attribute is not a trust anchor there). It holds
    no secret, so it has no password: Java loads it without one."""
    cas = [
        pkcs12.PKCS12Certificate(cert, f"ca-{index}".encode())
        for index, cert in enumerate(x509.load_pem_x509_certificates(ca_bundle))
    ]
    return pkcs12.serialize_java_truststore(cas, serialization.NoEncryption())


def _new_ca(now: dt.datetime, ca_name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    cert = (
        _builder(name, name, key.public_key(), now, CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def _new_serving(
    ca_pem: bytes, ca_key_pem: bytes, hosts: Sequence[str], now: dt.datetime
) -> tuple[bytes, bytes]:
    ca = _certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the webhook CA key is not an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    cert = (
        _builder(subject, ca.subject, key.public_key(), now, SERVING_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + lifetime)
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _canonical(hosts: Sequence[str]) -> set[str]:
    return {str(name.value) for name in _names(hosts)}


def _hosts_of(pem: bytes) -> set[str]:
    san = _certificate(pem).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return {str(name.value) for name in san.value}


def _lasts(pem: bytes, now: dt.datetime, margin: dt.timedelta) -> bool:
    return _certificate(pem).not_valid_after_utc - margin > now


def _certificate(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def _split_pem(bundle: bytes) -> list[bytes]:
    return [_cert_pem(cert) for cert in x509.load_pem_x509_certificates(bundle)] if bundle else []


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
