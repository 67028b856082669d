"""Who is asking: the client's IP address (behind trusted proxies), its network and user agent."""

from __future__ import annotations

import functools
import ipaddress

from django.http import HttpRequest

from sessionplus.backends.metadata import clean_user_agent
from sessionplus.conf import conf

# The part of an address that binding to "ip_network" keeps: a home or office network
# keeps its /24 (IPv4) or /64 (IPv6) while the device's own address moves inside it.
NETWORK_PREFIXES = {4: 24, 6: 64}

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# Cached: a session write records the client's address, and ipaddress parses in Python
# (about 10 µs); a bounded cache keeps a flood of distinct addresses from growing it.
@functools.lru_cache(maxsize=1024)
def _valid_ip(value: str | None) -> str | None:
    try:
        address = ipaddress.ip_address((value or "").strip())
    except ValueError:
        return None
    # A dual-stack server sees IPv4 clients as ::ffff:a.b.c.d: binding must compare their
    # IPv4 /24, not the ::/64 every such address shares.
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def client_ip(request: HttpRequest) -> str | None:
    """
    Return the client's IP address.

    ``REMOTE_ADDR`` unless ``SESSIONPLUS_TRUSTED_PROXIES`` is n > 0; then the n-th entry
    from the right of ``X-Forwarded-For``: each trusted proxy appends the address it
    received the request from, so entries further left were written by the client and
    may be forged. A header too short to hold n entries, or a malformed entry, means a
    request that did not come through the proxies: fall back to ``REMOTE_ADDR``.
    """
    remote_addr = _valid_ip(request.META.get("REMOTE_ADDR"))
    proxies = conf.SESSIONPLUS_TRUSTED_PROXIES
    if not proxies:
        return remote_addr
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    if len(forwarded) < proxies:
        return remote_addr
    return _valid_ip(forwarded[-proxies]) or remote_addr


@functools.lru_cache(maxsize=1024)
def ip_network(ip: str | None) -> IPNetwork | None:
    """Return the network an address belongs to for binding (/24 or /64), or None."""
    address = _valid_ip(ip)
    if address is None:
        return None
    version = ipaddress.ip_address(address).version
    return ipaddress.ip_network(f"{address}/{NETWORK_PREFIXES[version]}", strict=False)


def user_agent(request: HttpRequest) -> str:
    """Return the ``User-Agent`` header as sessionplus stores it: cleaned and cut."""
    return clean_user_agent(request.META.get("HTTP_USER_AGENT", ""))
