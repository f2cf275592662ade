"""Make the lab's certificates: a lab CA, the daemon's server certificate, client certificates.

    python scripts/make_certs.py OUT_DIR [--server-name lab-pc.example.org ...]
                                 [--client core --client alice ...] [--days 825] [--force]

Writes, in OUT_DIR (mode 0700, private keys 0600):
    ca.pem, ca.key          the lab CA (keep ca.key offline once the certificates are made)
    daemon.pem              the daemon's certificate + key (SAN 127.0.0.1, localhost, ::1 and
                            every --server-name): python -m hardware_interface --tls-cert daemon.pem
    client-NAME.pem         a client certificate + key per --client (default: "core"); the core
                            uses it as hardware_client_cert, operators' terminals likewise
    daemon.tokens           one random bearer token (python -m hardware_interface --token-file)

Keys are ECDSA P-256 (small, fast handshakes); signatures SHA-256.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ORGANISATION = "MAOSIC lab"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
DEFAULT_DAYS = 825  # the longest validity most TLS clients still accept for a leaf
CA_DAYS = 3650


class CertError(ValueError):
    """A name or option given to make_certs is unusable."""


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_ca(days: int = CA_DAYS) -> Issued:
    """A self-signed CA that may sign leaves only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"{ORGANISATION} CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def issue(ca: Issued, common_name: str, server_names: list[str] | None, days: int) -> Issued:
    """A leaf signed by ``ca``: a server certificate when ``server_names`` is given, else a
    client certificate (the extended key usage keeps one from posing as the other)."""
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if server_names:
        builder = builder.add_extension(_san(server_names), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes, private: bool, force: bool) -> None:
    if path.exists() and not force:
        raise CertError(f"{path} exists; pass --force to replace it")
    path.unlink(missing_ok=True)
    # create with the final mode so a private key is never readable by others, not even briefly
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _check_name(kind: str, name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise CertError(
            f"{kind} {name!r}: use 1-63 letters, digits, '.', '_' or '-' (starting alphanumeric)"
        )


def make_certs(
    out_dir: Path,
    server_names: list[str] | None = None,
    clients: list[str] | None = None,
    days: int = DEFAULT_DAYS,
    force: bool = False,
) -> dict[str, Path]:
    """Write the CA, the daemon certificate, client certificates and a token; return the paths.

    server_names: extra DNS names or IP addresses of the lab PC (loopback is always included).
    clients: names of client certificates (default ["core"]). days: leaf validity (days).
    """
    if not 1 <= days <= DEFAULT_DAYS:
        raise CertError(f"--days {days}: must be between 1 and {DEFAULT_DAYS}")
    clients = ["core"] if clients is None else clients
    for name in clients:
        _check_name("client name", name)
    if len(set(clients)) != len(clients):
        raise CertError(f"client names repeat: {clients}")
    names = list(LOOPBACK_NAMES)
    for name in server_names or []:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            _check_name("server name", name)
        if name not in names:
            names.append(name)
    out_dir.mkdir(parents=True, exist_ok=True)
    out_dir.chmod(0o700)
    ca = make_ca()
    paths = {"ca": out_dir / "ca.pem", "ca_key": out_dir / "ca.key"}
    _write(paths["ca"], _cert_pem(ca.cert), private=False, force=force)
    _write(paths["ca_key"], _key_pem(ca.key), private=True, force=force)
    daemon = issue(ca, "maosic-daemon", names, days)
    paths["daemon"] = out_dir / "daemon.pem"
    _write(paths["daemon"], _cert_pem(daemon.cert) + _key_pem(daemon.key), True, force)
    for client in clients:
        leaf = issue(ca, client, None, days)
        paths[f"client-{client}"] = out_dir / f"client-{client}.pem"
        _write(paths[f"client-{client}"], _cert_pem(leaf.cert) + _key_pem(leaf.key), True, force)
    paths["tokens"] = out_dir / "daemon.tokens"
    _write(paths["tokens"], (secrets.token_urlsafe(32) + "\n").encode(), True, force)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder for the certificates and keys")
    parser.add_argument("--server-name", action="append", default=[],
                        help="DNS name or IP of the lab PC (repeatable)")  # fmt: skip
    parser.add_argument("--client", action="append", default=None,
                        help="client certificate to make (repeatable; default: core)")  # fmt: skip
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="leaf validity (days)")
    parser.add_argument("--force", action="store_true", help="replace existing files")
    args = parser.parse_args(argv)
    try:
        paths = make_certs(args.out_dir, args.server_name, args.client, args.days, args.force)
    except (CertError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for label, path in paths.items():
        print(f"{label:16s} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
