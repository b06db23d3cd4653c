"""Make a private certificate authority and the certificates the TLS examples use.

A one-shot program: it creates a new CA in memory, has it sign a server
certificate for `127.0.0.1` and `localhost` (recipe-api's) and a client
certificate for `web-api` (for mutual TLS), writes them as PEM files and
exits. The CA's own private key is never written: once the program exits,
nobody can sign anything else with this CA. Run it again and you get a brand
new CA that trusts none of the old certificates.

Run it:

    python examples/protocols/tls_certs.py

Environment:

- `CERT_DIR`: directory to write into (default `certs`); a directory given
  as the first argument wins.
- `CERT_DAYS`: how many days the server and client certificates are valid
  (default `30`).

A bad setting (`CERT_DAYS=abc`, `CERT_DAYS=0`) stops it with exit code 2 and one
line naming the variable, before it writes anything.

Private keys are written with mode 0600 (readable by their owner only). None
of these files belongs in version control: make them where they are used.
"""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path

import trustme
from pydantic import PositiveInt, ValidationError
from pydantic_settings import BaseSettings


class Settings(BaseSettings):
    """Read once at start from the environment: CERT_DIR, CERT_DAYS."""

    cert_dir: Path = Path("certs")
    cert_days: PositiveInt = 30


def load_settings() -> Settings:
    """The settings, or exit code 2 with one line per bad variable and no traceback."""
    try:
        return Settings()
    except ValidationError as error:
        for problem in error.errors():
            name = str(problem["loc"][0]).upper()
            print(f"configuration error: {name}: {problem['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


settings = load_settings()
CERT_DIR = Path(sys.argv[1]) if len(sys.argv) > 1 else settings.cert_dir
CERT_DAYS = settings.cert_days

WHAT = {
    "ca.pem": "CA certificate: give it to whoever must trust the CA",
    "server.pem": "recipe-api certificate, for 127.0.0.1 and localhost",
    "server.key": "recipe-api private key",
    "client.pem": "web-api client certificate",
    "client.key": "web-api private key",
}


# --8<-- [start:issue]
def issue() -> dict[str, bytes]:
    """Make a CA, have it sign two certificates; return every file to write."""
    ca = trustme.CA(
        organization_name="Distributed Python",
        organization_unit_name="dev CA",
    )
    now = datetime.datetime.now(datetime.UTC)
    expires = now + datetime.timedelta(days=CERT_DAYS)
    # The names a client may use to reach the server go in subjectAltName:
    # an IP address entry for 127.0.0.1 and a DNS entry for localhost.
    server = ca.issue_cert(
        "127.0.0.1",
        "localhost",
        common_name="recipe-api",
        organization_name="Distributed Python",
        organization_unit_name="services",
        not_after=expires,
    )
    client = ca.issue_cert(
        "web-api",
        common_name="web-api",
        organization_name="Distributed Python",
        organization_unit_name="services",
        not_after=expires,
    )
    files = {
        "ca.pem": ca.cert_pem,  # public: give it to whoever must trust the CA
        "server.pem": server.cert_chain_pems[0],
        "server.key": server.private_key_pem,
        "client.pem": client.cert_chain_pems[0],
        "client.key": client.private_key_pem,
    }
    return {name: blob.bytes() for name, blob in files.items()}


# --8<-- [end:issue]


# --8<-- [start:write]
def write(path: Path, data: bytes, *, private: bool) -> None:
    # A key is created 0600 from its first byte, never readable by others even
    # briefly; fchmod also tightens a file that existed before with a looser mode.
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as file:
        if private:
            os.fchmod(file.fileno(), 0o600)
        file.write(data)


def main() -> None:
    CERT_DIR.mkdir(parents=True, exist_ok=True)
    print(f"writing {CERT_DIR}/")
    for name, data in issue().items():
        private = name.endswith(".key")
        write(CERT_DIR / name, data, private=private)
        what = WHAT[name]
        if private:
            what += f" (mode {(CERT_DIR / name).stat().st_mode & 0o777:04o})"
        print(f"  {name:<11} {what}")
    print(f"the server and client certificates expire in {CERT_DAYS} days")


# --8<-- [end:write]

if __name__ == "__main__":
    main()
