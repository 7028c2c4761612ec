"""The gate in front of the served app: host names, websocket origins, the token.

An ASGI middleware that `insight.ui.serve` hands to Streamlit's own ASGI app (`st.App(...,
middleware=[...])`, Streamlit 1.67's server is Starlette on uvicorn), so it sees every
request before Streamlit does: the page, the websocket that carries the app, media, uploads
and the frontend's static files. Nothing of the app is reachable without the token; only
`/_stcore/health` answers (`ok`, for load balancers and the test harness).

- `Host` not one this server answers (`insight.serving.allowed_hosts`): 403, HTTP and
  websocket alike (DNS rebinding).
- A websocket whose `Origin` is another site: refused (403 at the handshake).
- With a token: a request without the sign-in cookie gets the sign-in form (a page) or 401
  (anything else; a websocket is refused). `?token=T` on a page sets the cookie and
  redirects to the same address without it, so the token leaves the address bar (and a
  wiki's iframe keeps working); the form posts to `_insight/signin`. The token is compared
  in constant time and never logged (uvicorn's access log is off in Streamlit's runner).

Example:

>>> from starlette.middleware import Middleware
>>> Middleware(Gate, token="s3cret", port=8501)  # doctest: +ELLIPSIS
Middleware(Gate, ...)
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from insight.serving import (
    Hosts,
    cookie_name,
    cookie_value,
    host_allowed,
    origin_allowed,
    safe_next,
    strip_token,
    token_matches,
)

__all__ = ["Gate", "SIGNIN_PATH", "signin_page"]

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]
SIGNIN_PATH = "/_insight/signin"
OPEN_PATHS = frozenset({"/_stcore/health"})
# Paths a browser fetches itself, not pages: they get 401, not the form.
_NOT_PAGES = ("/_stcore/", "/media/", "/component/", "/static/", "/favicon", "/_insight/")
_MAX_FORM = 4096
_COOKIE_DAYS = 30  # as Jupyter's login cookie


def signin_page(next_url: str, *, wrong: bool = False) -> str:
    """The sign-in form: the only thing a visitor without the token sees."""
    note = ('<p class="wrong" role="alert">That token is not right. Ask whoever runs this '
            'server for the URL with the token, or for the token itself.</p>') if wrong else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>insight · sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<style>
body {{ font-family: "Source Sans Pro", system-ui, sans-serif; background: #f0f2f6;
       color: #31333f; display: flex; justify-content: center; margin: 0; }}
main {{ background: #fff; margin-top: 12vh; padding: 2rem 2.5rem; border-radius: .75rem;
       box-shadow: 0 1px 4px rgba(0,0,0,.12); max-width: 26rem; }}
h1 {{ font-size: 1.6rem; margin: 0 0 .5rem; }}
p {{ line-height: 1.45; }}
label {{ display: block; font-weight: 600; margin: 1rem 0 .35rem; }}
input[type=password] {{ width: 100%; box-sizing: border-box; padding: .55rem .7rem;
       font-size: 1rem; border: 1px solid #bfc5d3; border-radius: .5rem; }}
button {{ margin-top: 1rem; padding: .5rem 1.2rem; font-size: 1rem; border: 0;
         border-radius: .5rem; background: #ff4b4b; color: #fff; cursor: pointer; }}
.wrong {{ color: #b42318; background: #fef3f2; padding: .6rem .8rem; border-radius: .5rem; }}
code {{ background: #f0f2f6; padding: 0 .25rem; border-radius: .25rem; }}
</style></head>
<body><main>
<h1>insight</h1>
<p>This server asks for a token. It is in the URL <code>insight serve</code> printed
(<code>?token=…</code>), or ask whoever runs the server.</p>
{note}
<form method="post" action="{html.escape(SIGNIN_PATH, quote=True)}">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus
       required>
<input type="hidden" name="next" value="{html.escape(next_url, quote=True)}">
<button type="submit">Sign in</button>
</form>
</main></body></html>
"""


class Gate:
    """ASGI middleware: checks every HTTP and websocket request before the app sees it.

    Args:
        app: the ASGI app behind the gate (Streamlit's).
        token: the token, or `None` for none (loopback, or `--no-token`).
        port: the server's port (names the cookie).
        hosts: the host names answered (`insight.serving.allowed_hosts`); `None`: any.
    """

    def __init__(self, app: ASGIApp, *, token: str | None, port: int,
                 hosts: Hosts | None = None) -> None:
        self.app = app
        self._token = token
        self._cookie = cookie_name(port)
        self._signed = cookie_value(token) if token else ""
        self._hosts = hosts

    def __repr__(self) -> str:  # never the token
        return f"Gate(port cookie={self._cookie!r}, token={'set' if self._token else 'none'})"

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        headers = Headers(scope=scope)
        if not host_allowed(headers.get("host"), self._hosts):
            await self._refuse(scope, receive, send, 403, "This server does not answer "
                               "that host name (insight serve --allow-host NAME adds one).")
            return
        if kind == "websocket" and not origin_allowed(headers.get("origin"),
                                                      headers.get("host"), self._hosts):
            await self._refuse(scope, receive, send, 403, "Cross-origin websocket refused.")
            return
        if scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if self._token is None:
            if kind == "http" and _token_in(scope) is not None and \
                    scope["method"] in ("GET", "HEAD"):  # a link made for a token server
                await self._redirect(_without_token(scope), set_cookie=False, scope=scope)(
                    scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        signed = self._signed_in(headers)
        if kind == "websocket":
            if signed:
                await self.app(scope, receive, send)
            else:
                await self._refuse(scope, receive, send, 401, "Sign in first.")
            return
        if scope["method"] == "POST" and scope["path"].endswith(SIGNIN_PATH):
            await self._sign_in(scope, receive, send)
            return
        given = _token_in(scope)
        if given is not None and scope["method"] in ("GET", "HEAD"):
            # A link with ?token=: remember it, and load the same address without it.
            ok = token_matches(given, self._token)
            if ok or signed:
                await self._redirect(_without_token(scope), set_cookie=ok, scope=scope)(
                    scope, receive, send)
                return
            await self._form(scope, receive, send, wrong=True)
            return
        if signed:
            await self.app(scope, receive, send)
        else:
            await self._form(scope, receive, send, wrong=False)

    def _signed_in(self, headers: Headers) -> bool:
        cookies = cookie_parser(headers.get("cookie", ""))
        value = cookies.get(self._cookie, "")
        return bool(value) and token_matches(value, self._signed)

    async def _form(self, scope: Scope, receive: Any, send: Any, *, wrong: bool) -> None:
        path = scope["path"]
        if scope["method"] not in ("GET", "HEAD") or path.startswith(_NOT_PAGES):
            await PlainTextResponse("Sign in first: open this server's address in a browser "
                                    "and give the token.", 401)(scope, receive, send)
            return
        page = signin_page(_without_token(scope), wrong=wrong)
        await HTMLResponse(page, 401, headers=_NO_STORE)(scope, receive, send)

    async def _sign_in(self, scope: Scope, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > _MAX_FORM or not message.get("more_body"):
                break
        form = dict(parse_qsl(body[:_MAX_FORM].decode("utf-8", "replace"),
                              keep_blank_values=True))
        target = safe_next(form.get("next"))
        if token_matches(form.get("token"), self._token or ""):
            await self._redirect(target, set_cookie=True, scope=scope)(scope, receive, send)
            return
        await HTMLResponse(signin_page(target, wrong=True), 401, headers=_NO_STORE)(
            scope, receive, send)

    def _redirect(self, target: str, *, set_cookie: bool, scope: Scope) -> Response:
        response = RedirectResponse(target, 303, headers=_NO_STORE)
        if set_cookie:
            https = scope.get("scheme") in ("https", "wss") or Headers(scope=scope).get(
                "x-forwarded-proto", "") == "https"
            # Over HTTPS the cookie also reaches a wiki's cross-site iframe (SameSite=None,
            # partitioned per embedding site); over plain HTTP browsers allow only Lax.
            response.set_cookie(self._cookie, self._signed, max_age=_COOKIE_DAYS * 86400,
                                path="/", httponly=True, secure=https,
                                samesite="none" if https else "lax",
                                partitioned=https)
        return response

    @staticmethod
    async def _refuse(scope: Scope, receive: Any, send: Any, status: int, text: str) -> None:
        if scope["type"] == "websocket":
            # Closing before accepting makes uvicorn answer the handshake with HTTP 403.
            await send({"type": "websocket.close", "code": 1008, "reason": ""})
            return
        await PlainTextResponse(text, status)(scope, receive, send)


def _token_in(scope: Scope) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    return dict(parse_qsl(query, keep_blank_values=True)).get("token")


def _without_token(scope: Scope) -> str:
    """The request's path and query without `token=`: where to send the browser next."""
    rest = strip_token(scope.get("query_string", b"").decode("latin-1"))
    return safe_next(scope["path"] + (f"?{rest}" if rest else ""))


_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
