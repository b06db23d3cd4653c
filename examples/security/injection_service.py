"""Two routes that take a name or a URL from the client, and refuse what escapes.

`GET /files/<name>` serves a file from one directory, `FILES_DIR`, and nothing
outside it: `../`, an absolute path, the same encoded (`%2e%2e%2f`), a symlink
that points outside and a NUL byte are all refused with a 4xx and a JSON error.
It resolves the path first (symlinks and `..` included) and then checks that
the result is still inside the directory.

`POST /fetch` with `{"url": "..."}` fetches that URL for the client (a link
preview, a webhook test) and answers its status and the start of its body.
Only `http` and `https`, and only the `host:port` entries listed in
`FETCH_ALLOW`: everything else is refused before any connection is made
(403), 127.0.0.1, localhost, ::1, 169.254.169.254 and private ranges
included. A listed name that resolves to a loopback, private, link-local or
otherwise non-public address is refused too (a DNS name pointed at the inside),
and the address that passed the check is the one connected to. Redirects are
not followed blindly: each hop is checked as the first was, three at most.

Run it:

    python examples/security/injection_service.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `FILES_DIR`: the directory `/files/` serves (default: `injection_files`
  beside this file).
- `FETCH_ALLOW`: comma-separated `host:port` entries that `/fetch` may reach,
  exactly; an entry that is an IP address is trusted as written (default: empty,
  nothing may be fetched).
- `FETCH_TIMEOUT`: seconds a fetch may take, per hop (default `2`).

A bad setting (`PORT=abc`, `FILES_DIR=/nonexistent`, `FETCH_ALLOW=not-a-host`,
`FETCH_TIMEOUT=-1`) stops it at start with exit code 2 and one line naming the
variable and what it accepts. It stops cleanly on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import ipaddress
import mimetypes
import socket
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlsplit

import httpx
import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    DirectoryPath,
    Field,
    PositiveFloat,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json, raw

HERE = Path(__file__).resolve().parent


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, FILES_DIR, FETCH_*."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=1, le=65535)
    files_dir: DirectoryPath = HERE / "injection_files"
    # NoDecode: the variable is "a:1,b:2", not JSON; the validator below splits it.
    fetch_allow: Annotated[frozenset[tuple[str, int]], NoDecode] = frozenset()
    fetch_timeout: PositiveFloat = 2.0

    @field_validator("fetch_allow", mode="before")
    @classmethod
    def host_port_entries(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        entries = set()
        for entry in filter(None, (part.strip() for part in value.split(","))):
            try:
                parts = urlsplit(f"//{entry}")  # parses "[::1]:8080" as well
                host, port = parts.hostname, parts.port
                exact = entry == parts.netloc and not parts.username  # no path, no user
            except ValueError:  # a port that is not a number, a bad IPv6 address
                host, port, exact = None, None, False
            if not (host and port is not None and exact):
                raise ValueError(f"expected host:port entries separated by commas: {entry!r}")
            entries.add((host, port))
        return frozenset(entries)


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
# --8<-- [end:settings]

FILES_DIR = settings.files_dir.resolve()
MAX_FILE_BYTES = 1024 * 1024
MAX_FETCH_BYTES = 64 * 1024
MAX_REDIRECTS = 3

app = Sanic("injection-service", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 16 * 1024
app.config.MOTD = False


class Refused(Exception):
    """A request this service will not carry out: a 4xx (or 502) with the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@app.exception(Refused)
async def refused(request: Request, error: Refused) -> HTTPResponse:
    return json({"error": error.reason}, status=error.status)


# --8<-- [start:files]
def read_inside(root: Path, name: str) -> tuple[bytes, str]:
    """The bytes of `root/name`, if that is a file inside `root` once resolved."""
    if "\x00" in name:  # the OS would cut the name there; refuse it outright
        raise Refused(400, "the name contains a NUL byte")
    # resolve() follows every symlink and removes every "..": what is left is the
    # real place on disk. An absolute `name` replaces root entirely: caught too.
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise Refused(403, "the name points outside the files directory")
    if not path.is_file():
        raise Refused(404, "no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise Refused(413, "the file is too large to serve")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return path.read_bytes(), content_type


@app.get("/files/<name:path>")
async def get_file(request: Request, name: str) -> HTTPResponse:
    # Sanic hands the parameter over still percent-encoded: decode it once, so that
    # the check below sees what the filesystem will see (%2e%2e%2f is ../).
    try:
        name = unquote(name, errors="strict")
    except UnicodeDecodeError:
        raise Refused(400, "the name is not valid UTF-8") from None
    # Disk access in a thread: a slow disk never stalls the event loop.
    body, content_type = await asyncio.to_thread(read_inside, FILES_DIR, name)
    return raw(body, content_type=content_type)


# --8<-- [end:files]


# --8<-- [start:non_public]
def non_public(address: str) -> str | None:
    """What kind of internal address this is, or None for a public one."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for kind in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"


def literal_ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


# --8<-- [end:non_public]


# --8<-- [start:destination]
async def destination(url: httpx.URL) -> str:
    """The IP address to connect to for `url`, or Refused: decided before any connection."""
    if url.scheme not in ("http", "https"):
        raise Refused(400, f"only http and https URLs may be fetched, not {url.scheme!r}")
    if not url.host:
        raise Refused(400, "the URL has no host")
    host, port = url.host, url.port or (443 if url.scheme == "https" else 80)
    ip = literal_ip(host)
    if (host, port) not in settings.fetch_allow:
        kind = non_public(ip) if ip else None
        why = f" ({host} is a {kind} address)" if kind else ""
        raise Refused(403, f"{host}:{port} is not in the allow-list{why}")
    if ip:
        return ip  # listed as an address: the operator chose it, as written
    # A listed name is looked up once, and every address it has must be public:
    # a name pointed at 127.0.0.1 or 169.254.169.254 must not reach them.
    loop = asyncio.get_running_loop()
    try:
        found = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), settings.fetch_timeout
        )
    except (OSError, TimeoutError):
        raise Refused(502, f"{host} could not be resolved") from None
    addresses = [info[4][0] for info in found]
    for address in addresses:
        if kind := non_public(address):
            raise Refused(403, f"{host} resolves to {address}, a {kind} address")
    return addresses[0]


# --8<-- [end:destination]


class FetchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: str = Field(min_length=1, max_length=2048)


@app.before_server_start
async def open_client(app: Sanic) -> None:
    # follow_redirects=False: every hop goes through destination() below.
    app.ctx.client = httpx.AsyncClient(timeout=settings.fetch_timeout, follow_redirects=False)


@app.after_server_stop
async def close_client(app: Sanic) -> None:
    await app.ctx.client.aclose()


# --8<-- [start:fetch_checked]
async def fetch_checked(url: httpx.URL) -> dict:
    for _hop in range(MAX_REDIRECTS + 1):
        ip = await destination(url)
        # Connect to the address that was checked, not to a second lookup of the name
        # (which could answer differently); the name still goes in Host and TLS SNI.
        pinned = url.copy_with(host=ip)
        headers = {"Host": url.netloc.decode("ascii")}
        request = app.ctx.client.build_request("GET", pinned, headers=headers)
        if url.scheme == "https":
            request.extensions["sni_hostname"] = url.host
        response = await app.ctx.client.send(request, stream=True)
        try:
            if response.is_redirect:
                url = url.join(response.headers["Location"])  # checked on the next turn
                continue
            body = b""
            async for chunk in response.aiter_bytes():  # read no more than the limit
                body += chunk
                if len(body) > MAX_FETCH_BYTES:
                    raise Refused(502, f"the answer is larger than {MAX_FETCH_BYTES} bytes")
        finally:
            await response.aclose()
        text = body.decode("utf-8", "replace")
        return {"url": str(url), "status": response.status_code, "body": text}
    raise Refused(502, f"more than {MAX_REDIRECTS} redirects")


# --8<-- [end:fetch_checked]


# --8<-- [start:fetch]
@app.post("/fetch")
async def fetch(request: Request) -> HTTPResponse:
    try:
        asked = FetchRequest.model_validate_json(request.body)
    except ValidationError as error:
        if any(problem["type"] == "json_invalid" for problem in error.errors()):
            raise Refused(400, "the body is not valid JSON") from None
        problems = [
            {"loc": ["body", *p["loc"]], "msg": p["msg"], "type": p["type"]}
            for p in error.errors(include_url=False, include_input=False)
        ]
        return json({"error": "invalid request", "problems": problems}, status=422)
    try:
        url = httpx.URL(asked.url)
    except httpx.InvalidURL:
        raise Refused(400, "the URL cannot be parsed") from None
    try:
        return json(await fetch_checked(url))
    except httpx.TimeoutException:
        raise Refused(504, f"no answer within {settings.fetch_timeout:g}s") from None
    except httpx.InvalidURL:  # a redirect to something that is no URL
        raise Refused(502, "the answer redirects to an invalid URL") from None
    except httpx.HTTPError as error:  # refused, reset, bad answer...
        raise Refused(502, f"fetch failed: {type(error).__name__}") from None


# --8<-- [end:fetch]


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "ok"})


def main() -> None:
    app.run(
        host=settings.host,
        port=settings.port,
        single_process=True,
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
