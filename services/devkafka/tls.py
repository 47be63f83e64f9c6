"""TLS material for the local broker's SASL_SSL listener: a CA of its own, made once per data dir.

Dev and test only: the CA's private key lies next to the broker it signed for, and the keystore
password sits in a file beside them. A production cluster gets its certificates from the
organisation's PKI (see deploy/README.md). Nothing here is ever committed: it lives under
``HERSTELBUS_DATA_DIR/kafka/tls``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The names a client may use for the local broker; a client checks the certificate against them.
_BROKER_NAMES = ("localhost",)
_BROKER_IPS = ("127.0.0.1",)
_CA_DAYS = 3650
_BROKER_DAYS = 825


@dataclass(frozen=True)
class BrokerTls:
    ca_file: Path  # PEM: what clients trust (kafka-python's ssl_cafile)
    keystore: Path  # PKCS12: the broker's key and certificate chain
    password_file: Path  # the keystore password, 0600

    @property
    def keystore_password(self) -> str:
        return self.password_file.read_text().strip()


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` 0600 from the start (no window in which it is world-readable)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    tmp.replace(path)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "herstelbus dev"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _make_ca(folder: Path) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("herstelbus dev CA")).issuer_name(_name("herstelbus dev CA"))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(folder / "ca.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (folder / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _load_ca(folder: Path) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    return key, cert  # type: ignore[return-value]


def _make_keystore(folder: Path, ca_key: rsa.RSAPrivateKey, ca_cert: x509.Certificate) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.timezone.utc)
    san = [x509.DNSName(n) for n in _BROKER_NAMES] + [x509.IPAddress(ipaddress.ip_address(i)) for i in _BROKER_IPS]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost")).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=_BROKER_DAYS))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    password = secrets.token_urlsafe(24)
    # PBES2/AES-256 with an HMAC-SHA256 MAC: what Java 17's PKCS12 KeyStore reads.
    encryption = (serialization.PrivateFormat.PKCS12.encryption_builder()
                  .kdf_rounds(10_000).key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
                  .hmac_hash(hashes.SHA256()).build(password.encode()))
    blob = pkcs12.serialize_key_and_certificates(b"broker", key, cert, [ca_cert], encryption)
    _write_private(folder / "keystore.password", password.encode() + b"\n")
    _write_private(folder / "broker.p12", blob)


def ensure_broker_tls(folder: Path) -> BrokerTls:
    """The CA, the broker's PKCS12 keystore and its password under ``folder``; made when missing.

    Idempotent: an existing CA is kept (clients keep trusting it); a missing keystore is signed
    again by that CA. The password file is written before the keystore, so a keystore present
    always has its password.
    """
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    if (folder / "ca.key").is_file() and (folder / "ca.pem").is_file():
        ca_key, ca_cert = _load_ca(folder)
    else:
        ca_key, ca_cert = _make_ca(folder)
        (folder / "broker.p12").unlink(missing_ok=True)  # signed by a CA that is gone
    if not ((folder / "broker.p12").is_file() and (folder / "keystore.password").is_file()):
        _make_keystore(folder, ca_key, ca_cert)
    return BrokerTls(folder / "ca.pem", folder / "broker.p12", folder / "keystore.password")
