"""Serving to a team, the pure logic: typed paths confined to --root, the token and its cookie,
the host names a server answers (DNS rebinding), websocket origins, the gate's answers (driven
as an ASGI app, no server), and `insight serve`'s token options. The real served app in
Chromium: tests/e2e/test_token.py."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from insight.cli.main import build_parser
from insight.cli.serve import resolve_token
from insight.errors import UsageError
from insight.paths import confine, typed_path
from insight.serving import (
    allowed_hosts,
    cookie_name,
    cookie_value,
    host_allowed,
    is_loopback,
    new_token,
    origin_allowed,
    safe_next,
    strip_token,
    token_matches,
)


@pytest.fixture
def root(tmp_path) -> Path:
    (tmp_path / "shared" / "runs").mkdir(parents=True)
    (tmp_path / "shared" / "data.npz").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("root:x:0:0\n")
    return tmp_path / "shared"


# --root: every typed path resolved inside it --------------------------------------------------

def test_confine_accepts_paths_inside(root):
    assert confine("data.npz", root) == (root / "data.npz").resolve()
    assert confine(str(root / "runs"), root) == (root / "runs").resolve()
    assert confine("runs/new_capture", root) == (root / "runs" / "new_capture").resolve()
    assert confine(" runs ", root) == (root / "runs").resolve()  # the field's spaces


@pytest.mark.parametrize("typed, says", [
    ("/etc/passwd", "outside the folder this server shares"),
    ("/proc/self/environ", "outside the folder"),
    ("../secret.txt", "'..' is not accepted"),
    ("runs/../data.npz", "'..' is not accepted"),  # inside, but a visitor never needs '..'
    ("runs\x00.npz", "NUL byte"),
])
def test_confine_refuses(root, typed, says):
    with pytest.raises(UsageError, match=says) as info:
        confine(typed, root)
    assert "Received: path=" in str(info.value)


def test_confine_follows_symlinks_out(root):
    (root / "innocent").symlink_to(root.parent / "secret.txt")
    (root / "loop").symlink_to(root / "loop")
    with pytest.raises(UsageError, match="symlink leading outside the folder"):
        confine("innocent", root)
    with pytest.raises(UsageError, match="symlink"):
        confine("loop", root)


def test_confine_root_given_through_a_symlink(root, tmp_path):
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    assert confine("data.npz", alias) == (root / "data.npz").resolve()


def test_typed_path_policy(root):
    with pytest.raises(UsageError, match="does not open typed paths"):
        typed_path("/tmp", root=None, locked=True)
    assert typed_path("data.npz", root=root, locked=True) == (root / "data.npz").resolve()
    assert typed_path(str(root), root=None, locked=False) == root.resolve()


def test_refusals_never_show_what_a_file_holds(root):
    with pytest.raises(UsageError) as info:
        confine(str(root.parent / "secret.txt"), root)
    assert "root:x" not in str(info.value)


# the token ------------------------------------------------------------------------------------

def test_tokens_and_cookie():
    a, b = new_token(), new_token()
    assert a != b and len(a) >= 40
    assert token_matches(a, a) and not token_matches(b, a)
    assert not token_matches("", a) and not token_matches(None, a)
    assert not token_matches("é", a)  # not ASCII: compared, not an exception
    assert cookie_value(a) != a and a not in cookie_value(a)  # the cookie never holds it
    assert cookie_value(a) == cookie_value(a) != cookie_value(b)
    assert cookie_name(8501) != cookie_name(8502)  # two servers on one host


def _serve_args(*argv: str):
    return build_parser().parse_args(["serve", *argv])


@pytest.mark.parametrize("argv, env, expected", [
    ([], {}, (None, False)),                                   # localhost: none
    (["--token", "t1"], {}, ("t1", False)),                    # given
    ([], {"INSIGHT_TOKEN": "t2"}, ("t2", False)),              # from the environment
    ([], {"INSIGHT_TOKEN": ""}, (None, False)),                # empty: unset
    (["--token", "t1"], {"INSIGHT_TOKEN": "t2"}, ("t1", False)),
    (["--host", "0.0.0.0", "--no-token"], {}, (None, False)),  # said explicitly
])
def test_resolve_token(argv, env, expected):
    assert resolve_token(_serve_args(*argv), env) == expected


def test_beyond_localhost_a_token_is_generated():
    token, generated = resolve_token(_serve_args("--host", "0.0.0.0"), {})
    assert generated and len(token) >= 40


@pytest.mark.parametrize("argv, env, says", [
    (["--no-token", "--token", "t"], {}, "both given"),
    (["--host", "0.0.0.0", "--no-token"], {"INSIGHT_TOKEN": "t"}, "both given"),
    (["--token", " "], {}, "empty"),
])
def test_resolve_token_refuses(argv, env, says):
    with pytest.raises(UsageError, match=says):
        resolve_token(_serve_args(*argv), env)


# host names (DNS rebinding) and websocket origins -----------------------------------------------

def test_loopback_server_answers_its_own_names_only():
    hosts = allowed_hosts("127.0.0.1", ["insight.corp.example"])
    for ok in ("localhost:8501", "127.0.0.1:8501", "[::1]:8501", "127.0.0.2", "LOCALHOST",
               "insight.corp.example", "localhost."):
        assert host_allowed(ok, hosts), ok
    for bad in ("evil.example:8501", "localhost.evil.example", "10.0.0.5:8501", "", None,
                "user@localhost", "localhost:99999", "localhost/x"):
        assert not host_allowed(bad, hosts), bad


def test_any_host_beyond_loopback_unless_listed():
    assert allowed_hosts("0.0.0.0", []) is None
    assert host_allowed("whatever.example", None)
    hosts = allowed_hosts("0.0.0.0", ["insight.corp.example"])
    assert host_allowed("insight.corp.example:443", hosts) and host_allowed("10.1.2.3", hosts)
    assert not host_allowed("evil.example", hosts)
    assert is_loopback("[::1]") and is_loopback("localhost") and not is_loopback("0.0.0.0")


def test_websocket_origins():
    hosts = allowed_hosts("127.0.0.1", ["proxy.example"])
    assert origin_allowed(None, "localhost:8501", hosts)  # no browser: the token decides
    assert origin_allowed("http://localhost:8501", "localhost:8501", hosts)
    assert origin_allowed("https://proxy.example", "127.0.0.1:8501", hosts)
    assert not origin_allowed("http://evil.example", "localhost:8501", hosts)
    assert not origin_allowed("http://localhost:9999", "localhost:8501", hosts)  # other app
    assert not origin_allowed("null", "localhost:8501", hosts)
    # DNS rebinding: the Origin matches the Host, but the Host is not this server's name
    assert not origin_allowed("http://evil.example:8501", "evil.example:8501", hosts)
    assert origin_allowed("http://10.0.0.5:8501", "10.0.0.5:8501", None)
    assert not origin_allowed("http://evil.example", "10.0.0.5:8501", None)


def test_strip_token_and_next():
    assert strip_token("token=abc") == ""
    assert strip_token("embed=true&token=abc&panel=x&token=d") == "embed=true&panel=x"
    assert safe_next("/doctor?x=1") == "/doctor?x=1"
    for bad in ("//evil.example", "/\\evil.example", "https://evil.example", "", None,
                "/a\r\nSet-Cookie: x=1"):
        assert safe_next(bad) == "/", bad


# the gate, driven as an ASGI app ----------------------------------------------------------------

def _call(gate, path="/", *, kind="http", method="GET", query="", headers=(), body=b""):
    scope = {"type": kind, "path": path, "method": method, "scheme": "http",
             "query_string": query.encode(), "headers": [(k.lower().encode(), v.encode())
                                                         for k, v in headers]}
    sent, messages = [], [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(gate(scope, receive, send))
    start = next((m for m in sent if m["type"] in ("http.response.start",
                                                   "websocket.close")), None)
    if start is None or start["type"] == "websocket.close":
        return ("closed" if start else APP), {}, b""
    hdrs = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], hdrs, b"".join(m.get("body", b"") for m in sent)


@pytest.fixture
def gate():
    from insight.ui.gate import Gate

    async def app(scope, receive, send):  # stands for Streamlit: answers APP, accepts sockets
        if scope["type"] == "websocket":
            return
        await send({"type": "http.response.start", "status": APP, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    return Gate(app, token="s3cret-token", port=8599, hosts=allowed_hosts("127.0.0.1", []))


def _cookie() -> tuple[str, str]:
    return "cookie", f"{cookie_name(8599)}={cookie_value('s3cret-token')}"


HOST = ("host", "localhost:8599")
APP = 299  # what the app behind the gate answers: it was reached


def test_gate_without_token_shows_only_the_form(gate):
    status, headers, body = _call(gate, "/embeddings", query="embed=true&panel=projection",
                                  headers=[HOST])
    assert status == 401 and b'name="token"' in body
    assert b'value="/embeddings?embed=true&amp;panel=projection"' in body  # comes back here
    assert "no-store" in headers["cache-control"]
    for path in ("/_stcore/host-config", "/media/abc.png", "/static/js/index.js"):
        assert _call(gate, path, headers=[HOST])[0] == 401, path
    assert _call(gate, "/_stcore/stream", kind="websocket", headers=[HOST])[0] == "closed"
    assert _call(gate, "/_stcore/health", headers=[HOST])[0] == APP


def test_gate_token_link_sets_cookie_and_leaves_the_address_bar(gate):
    status, headers, _ = _call(gate, "/", query="embed=true&token=s3cret-token&panel=layer_table",
                               headers=[HOST])
    assert status == 303 and headers["location"] == "/?embed=true&panel=layer_table"
    name, value = _cookie()[1].split("=", 1)
    assert f"{name}={value}" in headers["set-cookie"] and "HttpOnly" in headers["set-cookie"]
    assert "s3cret-token" not in headers["set-cookie"]
    wrong = _call(gate, "/", query="token=nope", headers=[HOST])
    assert wrong[0] == 401 and b"not right" in wrong[2] and b"nope" not in wrong[2]


def test_gate_cookie_opens_page_and_websocket(gate):
    assert _call(gate, "/doctor", headers=[HOST, _cookie()])[0] == APP
    assert _call(gate, "/_stcore/stream", kind="websocket", headers=[HOST, _cookie()])[0] == APP
    forged = ("cookie", f"{cookie_name(8599)}={cookie_value('guess')}")
    assert _call(gate, "/doctor", headers=[HOST, forged])[0] == 401


def test_gate_form_post(gate):
    status, headers, _ = _call(gate, "/_insight/signin", method="POST", headers=[HOST],
                               body=b"token=s3cret-token&next=%2Fdoctor")
    assert status == 303 and headers["location"] == "/doctor" and "set-cookie" in headers
    status, headers, _ = _call(gate, "/_insight/signin", method="POST", headers=[HOST],
                               body=b"token=s3cret-token&next=%2F%2Fevil.example")
    assert headers["location"] == "/"  # never another site
    assert _call(gate, "/_insight/signin", method="POST", headers=[HOST],
                 body=b"token=wrong&next=%2F")[0] == 401


def test_gate_without_a_token_still_strips_one_from_links():
    from insight.ui.gate import Gate

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": APP, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    open_gate = Gate(app, token=None, port=8599, hosts=allowed_hosts("127.0.0.1", []))
    status, headers, _ = _call(open_gate, "/", query="panel=x&token=t", headers=[HOST])
    assert status == 303 and headers["location"] == "/?panel=x" and "set-cookie" not in headers
    assert _call(open_gate, "/", query="panel=x", headers=[HOST])[0] == APP
    assert _call(open_gate, "/", headers=[("host", "evil.example")])[0] == 403


def test_gate_refuses_other_host_names_and_origins(gate):
    assert _call(gate, "/", headers=[("host", "evil.example:8599"), _cookie()])[0] == 403
    assert _call(gate, "/_stcore/health", headers=[("host", "evil.example")])[0] == 403
    ws = [HOST, _cookie(), ("origin", "http://evil.example")]
    assert _call(gate, "/_stcore/stream", kind="websocket", headers=ws)[0] == "closed"
    assert "s3cret" not in repr(gate)


# the URL never carries a path or a trust flag ---------------------------------------------------

def test_links_name_models_not_files():
    from insight.export.deeplink import FORBIDDEN_KEYS, share_url
    from insight.launch import LaunchOptions
    from insight.panels import panel_names
    from insight.panels.registry import get_panel
    from insight.ui.share import link_targets

    opts = LaunchOptions(model="/srv/models/m.keras", data="/srv/d.npz", logdir="/srv/logs")
    names = [n for n in link_targets(opts) if n is not None]
    assert names and all(os.sep not in n and "." not in n for n in names), names
    for name in panel_names():
        params = {p.name for p in get_panel(name).params}
        assert not params & (FORBIDDEN_KEYS | {"token"}), name  # the gate strips token=
        url = share_url("http://h:1/", name, {}, names[0])
        assert "/srv" not in url and "unsafe" not in url and "token" not in url, url
