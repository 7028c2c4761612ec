"""Serving to a team, for real: `insight serve` with a token and `--root`, attacked with raw
HTTP (a forged Host, a forged websocket Origin: DNS rebinding) and used in Chromium (the
sign-in form and nothing else, a wrong token, a token link that leaves the address bar, a
typed path outside --root refused). One server for the module."""

from __future__ import annotations

import base64
import http.client
import os

import pytest
from unit._browser import start_server

from insight.serving import cookie_name, cookie_value

from .conftest import VIEWPORT, wait_for_app

pytestmark = pytest.mark.slow

TOKEN = "team-token-" + base64.urlsafe_b64encode(os.urandom(12)).decode()


@pytest.fixture(scope="module")
def server(chromium_path, tmp_path_factory):
    """`insight serve --root ROOT --allow-host proxy.example`, the token in the environment."""
    root = tmp_path_factory.mktemp("shared")
    try:
        server = start_server(tmp_path_factory.mktemp("serve") / "serve.log", "--root",
                              str(root), "--allow-host", "proxy.example",
                              env={"INSIGHT_TOKEN": TOKEN,
                                   "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache"))})
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


def _request(port: int, path: str, host: str, headers: dict[str, str] | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", path, skip_host=True)  # the Host a rebinding page would send
    conn.putheader("Host", host)
    for key, value in (headers or {}).items():
        conn.putheader(key, value)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


def _websocket(port: int, host: str, origin: str | None, cookie: str | None) -> int:
    """The status of a websocket handshake on Streamlit's stream (101: accepted)."""
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}
    headers |= {"Origin": origin} if origin else {}
    headers |= {"Cookie": cookie} if cookie else {}
    return _request(port, "/_stcore/stream", host, headers)


def test_host_names_origins_and_token_over_raw_http(server):
    port = server.port
    here = f"localhost:{port}"
    signed = f"{cookie_name(port)}={cookie_value(TOKEN)}"
    assert _request(port, "/", here) == 401  # the form
    assert _request(port, "/", here, {"Cookie": signed}) == 200
    assert _request(port, "/", f"proxy.example:{port}", {"Cookie": signed}) == 200
    # DNS rebinding: the attacker's name re-pointed at 127.0.0.1
    assert _request(port, "/", f"rebind.evil.example:{port}", {"Cookie": signed}) == 403
    assert _request(port, "/_stcore/health", f"rebind.evil.example:{port}") == 403
    # the plain-page deep link and its plotly.js sit behind the same gate
    assert _request(port, "/_insight/panel?panel=layer_table", here) == 401
    assert _request(port, "/_insight/plotly.min.js", here) == 401
    assert _request(port, "/_insight/panel?panel=layer_table", here, {"Cookie": signed}) == 200
    assert _request(port, "/_insight/panel?panel=layer_table", f"rebind.evil.example:{port}",
                    {"Cookie": signed}) == 403
    assert _websocket(port, here, f"http://{here}", signed) == 101
    assert _websocket(port, here, f"http://{here}", None) == 403  # no token: no app
    assert _websocket(port, here, "http://evil.example", signed) == 403
    assert _websocket(port, f"evil.example:{port}", f"http://evil.example:{port}", signed) == 403
    # the token is never in the server's arguments (`ps`) nor in what it printed
    with open(f"/proc/{server.pid}/cmdline", "rb") as fh:
        assert TOKEN.encode() not in fh.read()
    assert TOKEN not in server.log.read_text()


def test_sign_in_then_a_refused_path(browser, server):
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/training")
        form = page.locator("form")
        form.wait_for(timeout=30_000)
        assert page.get_by_test_id("stApp").count() == 0  # nothing of the app
        page.fill("input[name=token]", "not-the-token")
        page.click("button[type=submit]")
        assert "not right" in page.inner_text("body")
        page.fill("input[name=token]", TOKEN)
        page.click("button[type=submit]")
        page.get_by_test_id("stSidebar").wait_for(timeout=60_000)
        assert page.url == f"{server.url}/training"  # back where the visitor was going
        cookie = next(c for c in context.cookies() if c["name"] == cookie_name(server.port))
        assert cookie["httpOnly"] and TOKEN not in cookie["value"]
        field = page.get_by_role("textbox", name="Data")
        field.fill("/etc/passwd")
        field.press("Enter")
        alert = page.get_by_test_id("stSidebar").get_by_text("Data: refused.")
        alert.wait_for(timeout=60_000)
        text = page.get_by_test_id("stSidebar").inner_text()
        assert "outside the folder this server shares" in text and "root:" not in text
    finally:
        context.close()


def test_token_link_leaves_the_address_bar(browser, server):
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/?embed=true&panel=layer_table&token={TOKEN}")
        wait_for_app(page, timeout=90_000)
        assert page.url == f"{server.url}/?embed=true&panel=layer_table"
        assert "token" not in page.evaluate("window.location.href")
        assert page.get_by_test_id("stException").count() == 0
        assert page.get_by_test_id("stSidebar").count() == 0  # the panel alone
        page.get_by_test_id("stDataFrame").first.wait_for(timeout=60_000)
    finally:
        context.close()
