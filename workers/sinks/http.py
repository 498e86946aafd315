"""POST to a destination chosen by a user, safely: no redirects, and no private addresses unless allowed.

The host is resolved once, every address is checked, and the request goes to the checked
address (Host header and TLS server name kept), so DNS cannot swap in another address between
the check and the connection.

Requests go through httpcore (httpx's own transport) without httpx's client around it: a delivery
wants none of what that layer adds (redirects are refused, there is no auth flow, and cookies a
destination sets must not ride along on the next event), and per request it cost about as much CPU
as the connection and the HTTP/1.1 work itself. At most ``BODY_READ`` bytes of an answer are read.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx

from workers.exceptions import DeliveryError
from workhooks.core.headers import retry_after

RETRYABLE_4XX = {408, 409, 425, 429}
KEPT_ALIVE = 4  # per thread: one destination, one request at a time
BODY_READ = 64 * 1024  # bytes of an answer's body read at most: only its status and headers decide
KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (as httpx did): a NAT or a server may drop it silently
USER_AGENT = "workhooks/0.1"
DEFAULTS = {"accept": "*/*", "user-agent": USER_AGENT}  # a sink's own headers win
METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052's well-known prefix: the last 32 bits are the IPv4
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d (:: and ::1 are not IPv4)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, 6to4, NAT64, Teredo server and client).

    Python calls most of these forms global whatever they carry (2002:7f00:1:: is 6to4 for
    127.0.0.1), so the guard judges what they carry instead.
    """
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    if address in NAT64 or (address in IPV4_COMPATIBLE and int(address) > 1):
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return []


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner:
            return address not in IPV4_COMPATIBLE and all(is_public(carried) for carried in inner)
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address in METADATA_ADDRESSES
    )


def describe(address: Address) -> str:
    inner = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else []
    return f"{address}, which carries {', '.join(map(str, inner))}" if inner else str(address)


def resolve(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise DeliveryError(f"cannot resolve {host}: {error.strerror}") from None
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


def allowed(host: str, port: int, allow_private: bool) -> list[Address]:
    """The addresses ``host`` resolves to, if we may send there: a non-public one only with allow_private."""
    addresses = resolve(host, port)
    if not addresses:
        raise DeliveryError(f"{host} has no address")
    refused = [address for address in addresses if not is_public(address)]
    if refused and not allow_private:
        raise DeliveryError(
            f"{host} resolves to a non-public address ({describe(refused[0])}); set allow_private: true to allow it",
            permanent=True,
        )
    return addresses


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int
    headers: Mapping[str, str]  # names in lower case


def check_response(response: Answer | httpx.Response) -> None:
    """2xx passes; 4xx other than 408/409/425/429 is permanent; 429/503 carry their Retry-After."""
    code = response.status_code
    if 200 <= code < 300:
        return
    wait = retry_after(response.headers.get("retry-after")) if code in (429, 503) else None
    permanent = 300 <= code < 500 and code not in RETRYABLE_4XX
    what = "a redirect, which is not followed" if 300 <= code < 400 else f"{code}"
    raise DeliveryError(f"answered {what}", code, permanent=permanent, retry_after=wait)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context (the system's CAs, as httpx's default) for every client: building one costs ~20 ms."""
    return ssl.create_default_context()


class GuardedClient:
    """One connection pool per sending thread (each keeps its own connections alive): a single pool shared by
    64 threads spent more CPU on its bookkeeping under its lock than the requests did. A proxy named in the
    environment (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY: as httpx read them) carries the request to the
    checked address."""

    def __init__(self, timeout: float, allow_private: bool) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.local = threading.local()
        self.extensions = {"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}}
        self.proxies: dict[tuple[str, str], str | None] = {}

    def pool(self, scheme: str, host: str) -> httpcore.ConnectionPool:
        proxy = self.proxies.get((scheme, host), "")
        if proxy == "":  # the environment read once per destination (it scans every variable)
            proxy = self.proxies[scheme, host] = proxy_for(scheme, host)
        pools: dict[str | None, httpcore.ConnectionPool] = self.local.__dict__.setdefault("pools", {})
        found = pools.get(proxy)
        if found is None:
            found = httpcore.ConnectionPool(
                ssl_context=_tls() if scheme == "https" else None,  # ~20 ms to build: only where it is used
                max_connections=KEPT_ALIVE,
                max_keepalive_connections=KEPT_ALIVE,
                keepalive_expiry=KEEPALIVE_EXPIRY,
                proxy=httpcore.Proxy(proxy) if proxy else None,
            )
            pools[proxy] = found
        return found

    def post(self, url: str, content: bytes, headers: Mapping[str, str]) -> Answer:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = allowed(host, port, self.allow_private)[0]
        literal = f"[{address}]" if address.version == 6 else str(address)
        pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        given = {name.lower(): value for name, value in headers.items()}
        try:
            sent = [(b"host", parts.netloc.rsplit("@", 1)[-1].encode("ascii"))]
            sent += [(name.encode("ascii"), value.encode("ascii")) for name, value in {**DEFAULTS, **given}.items()]
            target = pinned.encode("ascii")
        except UnicodeError:
            raise DeliveryError("the sink's URL or one of its headers is not ASCII", permanent=True) from None
        extensions = {**self.extensions, "sni_hostname": host} if parts.scheme == "https" else self.extensions
        try:
            with self.pool(parts.scheme, host).stream(
                "POST", target, headers=sent, content=content, extensions=extensions
            ) as response:
                read = 0
                for chunk in response.iter_stream():  # the body is not used; read (bounded) so the connection is kept
                    read += len(chunk)
                    if read > BODY_READ:
                        break
                answered = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in response.headers}
                return Answer(response.status, answered)
        except httpcore.TimeoutException:
            raise DeliveryError(f"timed out after {self.timeout} s") from None
        except httpcore.LocalProtocolError as error:  # a header this sink is configured with cannot be sent
            raise DeliveryError(f"cannot be sent: {error}", permanent=True) from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol, httpcore.ProxyError,
                OSError) as error:  # fmt: skip
            raise DeliveryError(f"{type(error).__name__}: {error}") from None


def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy the environment names for this scheme and host (None: direct), read as httpx's trust_env did."""
    if urllib.request.proxy_bypass_environment(host):  # type: ignore[attr-defined]  # in the module, not its stubs
        return None
    proxies = urllib.request.getproxies_environment()
    return proxies.get(scheme) or proxies.get("all") or None
