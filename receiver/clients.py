"""Who is asking: the peer, unless the peer is one of our own proxies (`receiver.trusted_proxies`).

X-Forwarded-For is a list anyone can start: a client writes what it likes on the left and each proxy
appends the address it saw. Only the entries our proxies appended can be believed, so the client is
the rightmost entry that is not itself a trusted proxy. uvicorn's own proxy-header handling is off
(receiver/protocol.py), so the address arriving here is the TCP peer. The failure limiter and the
request log both read the answer from ``scope["client"]``, where receiver/front.py puts it (the peer in
``scope["peer"]``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_ADDRESS_CHARS = 64  # an entry our proxy wrote is an address; anything longer is cut before it is logged


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The peer; or, when the peer is a trusted proxy, the rightmost forwarded entry that is not one."""

    def is_trusted(text: str) -> bool:
        address = _address(text)
        return address is not None and any(address in network for network in trusted)

    if not trusted or not is_trusted(peer):
        return peer
    entries = [entry.strip() for value in forwarded_for for entry in value.split(",") if entry.strip()]
    for entry in reversed(entries):
        if not is_trusted(entry):
            return entry[:MAX_ADDRESS_CHARS]
    return entries[0][:MAX_ADDRESS_CHARS] if entries else peer  # a chain of our own proxies: the farthest
