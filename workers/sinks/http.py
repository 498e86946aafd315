"""POST to a destination chosen by a user, safely: no redirects, and no private addresses unless allowed.

The host is resolved once, every address is checked, and the request goes to the checked
address (Host header and TLS server name kept), so DNS cannot swap in another address between
the check and the connection.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

import httpx

from workers.exceptions import DeliveryError
from workhooks.core.headers import retry_after

RETRYABLE_4XX = {408, 409, 425, 429}
METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address in METADATA_ADDRESSES
    )


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


def check_response(response: httpx.Response) -> None:
    """2xx passes; 4xx other than 408/409/425/429 is permanent; 429/503 carry their Retry-After."""
    code = response.status_code
    if 200 <= code < 300:
        return
    wait = retry_after(response.headers.get("retry-after")) if code in (429, 503) else None
    permanent = 300 <= code < 500 and code not in RETRYABLE_4XX
    what = "a redirect, which is not followed" if 300 <= code < 400 else f"{code}"
    raise DeliveryError(f"answered {what}", code, permanent=permanent, retry_after=wait)


class GuardedClient:
    def __init__(self, timeout: float, allow_private: bool) -> None:
        self.allow_private = allow_private
        self.client = httpx.Client(timeout=timeout, follow_redirects=False)

    def post(self, url: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = resolve(host, port)
        if not addresses:
            raise DeliveryError(f"{host} has no address")
        refused = [address for address in addresses if not is_public(address)]
        if refused and not self.allow_private:
            raise DeliveryError(
                f"{host} resolves to a non-public address ({refused[0]}); set allow_private: true to allow it",
                permanent=True,
            )
        address = addresses[0]
        literal = f"[{address}]" if address.version == 6 else str(address)
        pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        headers = {**headers, "host": parts.netloc.rsplit("@", 1)[-1]}
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        try:
            return self.client.post(pinned, content=content, headers=headers, extensions=extensions)
        except httpx.TimeoutException:
            raise DeliveryError(f"timed out after {self.client.timeout.read} s") from None
        except httpx.HTTPError as error:
            raise DeliveryError(f"{type(error).__name__}: {error}") from None
