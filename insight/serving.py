"""Who may use a served app: the token, the host names it answers, the websocket origins.

As Jupyter does: beyond localhost a token is required (given, or generated and printed in
the URL); it is compared in constant time and kept in a cookie that holds a keyed hash of
it, never the token itself. A server on localhost answers only the host names it is served
as, so a page of another site whose name an attacker re-points at 127.0.0.1 (DNS
rebinding) gets 403. The ASGI middleware that applies this to every request is
`insight.ui.gate`; what is here is pure logic.

Example:

>>> allowed = allowed_hosts("127.0.0.1")
>>> host_allowed("localhost:8501", allowed), host_allowed("evil.example:8501", allowed)
(True, False)
>>> origin_allowed("http://localhost:8501", "localhost:8501", allowed)
True
>>> origin_allowed("http://evil.example:8501", "localhost:8501", allowed)
False
>>> strip_token("embed=true&token=abc&panel=layer_table")
'embed=true&panel=layer_table'
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = ["TOKEN_ENV", "is_loopback", "new_token", "token_matches", "cookie_name",
           "cookie_value", "Hosts", "allowed_hosts", "host_allowed", "origin_allowed",
           "strip_token", "safe_next"]

TOKEN_ENV = "INSIGHT_TOKEN"
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (`localhost`, 127.0.0.0/8, ::1)."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh token: 32 random bytes, URL-safe (as `secrets` recommends for tokens)."""
    return secrets.token_urlsafe(32)


def token_matches(given: str | None, token: str) -> bool:
    """Whether `given` is `token`, compared in constant time (`hmac.compare_digest`)."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token.encode())


def cookie_name(port: int) -> str:
    """The cookie's name, per port: browsers share cookies across the ports of a host, so
    two servers on one machine would otherwise overwrite each other's (Jupyter does the
    same)."""
    return f"insight-token-{port}"


def cookie_value(token: str) -> str:
    """What the cookie holds: an HMAC of a fixed text keyed by the token. A stolen cookie
    opens this server until its token changes, but does not reveal the token."""
    return hmac.new(token.encode(), b"insight signed-in v1", hashlib.sha256).hexdigest()


def _hostname(host_header: str) -> str | None:
    """The host name of a `Host` header (port dropped, IPv6 brackets removed, lowercased);
    `None` for a header that is not one."""
    try:
        parts = urlsplit(f"//{host_header}")
        _ = parts.port  # validates the port
    except ValueError:
        return None
    if not parts.hostname or parts.username is not None or parts.password is not None \
            or parts.path or parts.query or parts.fragment:
        return None
    return parts.hostname.lower().rstrip(".")


@dataclass(frozen=True)
class Hosts:
    """The host names a server answers (`allowed_hosts`)."""

    names: frozenset[str]
    any_address: bool = False  # any IP address too (served beyond loopback)
    proxies: frozenset[str] = frozenset()  # `--allow-host` names: trusted websocket origins


def allowed_hosts(bind: str, extra: Iterable[str] = ()) -> Hosts | None:
    """The host names a server bound to `bind` answers; `None` for any.

    On a loopback address: `localhost`, loopback addresses, the `--host` value and each
    `--allow-host` name (a reverse proxy's). Beyond loopback the names people use are not
    known in advance (the machine's name, its addresses, a proxy's) and the token guards
    the server: any name, unless `--allow-host` lists them (IP addresses are then accepted
    too: DNS rebinding needs a name the attacker controls).
    """
    names = frozenset(n.strip().strip("[]").lower().rstrip(".") for n in extra if n.strip())
    loopback = is_loopback(bind)
    if not loopback and not names:
        return None
    own = set() if bind in ("0.0.0.0", "::", "") else {bind.strip("[]").lower()}
    return Hosts(frozenset(LOCAL_NAMES | own | names), any_address=not loopback,
                 proxies=names)


def host_allowed(host_header: str | None, allowed: Hosts | None) -> bool:
    """Whether a request's `Host` header names this server (its port is not checked)."""
    if allowed is None:
        return True
    name = _hostname(host_header or "")
    if name is None:
        return False
    if name in allowed.names:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return allowed.any_address or address.is_loopback


def origin_allowed(origin: str | None, host_header: str | None,
                   allowed: Hosts | None) -> bool:
    """Whether a websocket opened by a page of `origin` may connect.

    No `Origin` (not a browser; the token still applies) is let through. Otherwise the
    origin must be this server as the browser addressed it (the same `host:port` as the
    `Host` header, itself allowed), or one of the `--allow-host` names (a proxy that
    rewrites `Host`). `Origin: null` (sandboxed frames, files) is refused.
    """
    if origin is None:
        return True
    if not host_allowed(host_header, allowed):
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    if host_header and parts.netloc.lower() == host_header.lower():
        return True
    proxies = allowed.proxies if allowed is not None else frozenset()
    return (parts.hostname or "").lower().rstrip(".") in proxies


def strip_token(query: str) -> str:
    """`query` without its `token` parameter (the rest kept in order)."""
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "token"]
    return urlencode(pairs)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this server, else `/` (never another site:
    `//evil.example` and `/\\evil.example` are protocol-relative URLs to browsers)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or \
            any(c in target for c in "\r\n"):
        return "/"
    return target
