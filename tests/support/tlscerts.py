"""A throwaway certificate authority with a server and a client certificate, for
tests of TLS listeners (files named as docker expects: ca.pem, cert.pem, key.pem)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path


def make(directory: Path) -> dict[str, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(k: ec.EllipticCurvePrivateKey, path: Path) -> None:
        path.write_bytes(k.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
        path.chmod(0o600)

    ca_key = key()
    ca = (x509.CertificateBuilder().subject_name(name("longboat test CA"))
          .issuer_name(name("longboat test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))

    def issue(cn: str, usage: x509.ObjectIdentifier, server: bool
              ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        k = key()
        builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca.subject)
                   .public_key(k.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), k

    pem = serialization.Encoding.PEM
    server_cert, server_key = issue("localhost", ExtendedKeyUsageOID.SERVER_AUTH, True)
    client_cert, client_key = issue("client", ExtendedKeyUsageOID.CLIENT_AUTH, False)
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server-cert.pem").write_bytes(server_cert.public_bytes(pem))
    write_key(server_key, directory / "server-key.pem")
    (directory / "cert.pem").write_bytes(client_cert.public_bytes(pem))
    write_key(client_key, directory / "key.pem")
    return {"ca": directory / "ca.pem", "server_cert": directory / "server-cert.pem",
            "server_key": directory / "server-key.pem", "cert": directory / "cert.pem",
            "key": directory / "key.pem"}
