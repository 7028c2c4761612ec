"""Two `insight serve` replicas behind a real nginx, configured with README's "Serving a
team: several replicas" configuration: one token, one results cache folder
(`INSIGHT_CACHE_DIR`), sticky sessions by a cookie nginx sets, websockets upgraded. A browser
on replica A opens the Activations page (the statistics pass is computed and stored); a
browser pinned to replica B opens it too, and B reads A's statistics from the shared cache:
the cache's own hit and miss counters (`insight.results.counters(shared=True)`) say so, not
timing."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from unit._browser import free_port, start_server

from insight import results

from .conftest import VIEWPORT, wait_for_app

pytestmark = pytest.mark.slow

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TOKEN = "replica-token-" + base64.urlsafe_b64encode(os.urandom(12)).decode()
COOKIE = "insight_route"


def readme_nginx() -> str:
    """The nginx configuration README's "Serving a team: several replicas" shows."""
    text = (Path(__file__).parents[2] / "README.md").read_text()
    section = text[text.index("## Serving a team: several replicas"):]
    start = section.index("```nginx\n") + len("```nginx\n")
    return section[start:section.index("```\n", start)]


def nginx_conf(tmp: Path, port: int, upstreams: list[int]) -> str:
    """README's configuration on loopback ports over plain HTTP, its logs and temp files in
    `tmp`, each response naming the replica that answered (`X-Insight-Replica`)."""
    conf = readme_nginx()
    edits = {"  server 127.0.0.1:8501;\n  server 127.0.0.1:8502;\n":
             "".join(f"  server 127.0.0.1:{p};\n" for p in upstreams),
             "listen 443 ssl;": f"listen 127.0.0.1:{port};", " Secure;": "",
             "SameSite=Lax\" always;": "SameSite=Lax\" always;\n"
                                       "    add_header X-Insight-Replica $upstream_addr always;"}
    for old, new in edits.items():
        assert old in conf, f"README's nginx configuration changed: no {old!r}"
        conf = conf.replace(old, new)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers need no other account here
    temps = "".join(f"  {t}_temp_path {tmp}/{t};\n" for t in
                    ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"{user}worker_processes 1;\nerror_log {tmp}/error.log;\n"
            "events { worker_connections 256; }\nhttp {\n" + temps
            + f"  log_format replica '$cookie_{COOKIE} $upstream_addr $status \"$request\"';\n"
            f"  access_log {tmp}/access.log replica;\n" + conf + "}\n")


@pytest.fixture(scope="module")
def cluster(chromium_path, tmp_path_factory):
    """Two replicas on one cache folder, and nginx in front of them."""
    if not Path(NGINX).exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("no nginx; CI must install it (.ci/run: apt-get install nginx)")
        pytest.skip("no nginx")
    tmp = tmp_path_factory.mktemp("replicas")
    env = {"INSIGHT_TOKEN": TOKEN, "INSIGHT_CACHE_DIR": str(tmp / "shared-cache"),
           "XDG_CACHE_HOME": str(tmp / "home-cache")}
    with ThreadPoolExecutor(2) as pool:
        starting = [pool.submit(start_server, tmp / f"replica{i}.log", env=env)
                    for i in (1, 2)]
        try:
            replicas = [s.result() for s in starting]
        except RuntimeError as exc:
            for s in starting:
                if s.exception() is None:
                    s.result().stop()
            pytest.fail(str(exc))
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_conf(tmp, port, [r.port for r in replicas]))
    proxy = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp), "-e",
                              str(tmp / "error.log"), "-g", f"daemon off; pid {tmp}/nginx.pid;"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                if proxy.poll() is not None:
                    pytest.fail(f"nginx exited: {proxy.stderr.read().decode()}")
                time.sleep(0.1)
        yield url, replicas, tmp
    finally:
        proxy.terminate()
        proxy.wait(timeout=15)
        for r in replicas:
            r.stop()


def replica_of(url: str, route: str) -> str:
    """Which replica (`127.0.0.1:port`) nginx sends a session with this cookie to."""
    request = urllib.request.Request(f"{url}/_stcore/health",
                                     headers={"Cookie": f"{COOKIE}={route}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["X-Insight-Replica"]


def open_activations(browser, url: str, route: str, shot: Path) -> str:
    """The Activations page in a fresh browser pinned by `route`; its table's text."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_cookies([{"name": COOKIE, "value": route, "url": url}])
    try:
        page = context.new_page()
        page.goto(f"{url}/activations?token={TOKEN}")
        wait_for_app(page, timeout=180_000)
        assert page.url == f"{url}/activations"  # signed in, the token gone from the bar
        assert page.get_by_test_id("stException").count() == 0
        table = page.get_by_test_id("stDataFrame").first
        table.wait_for(timeout=120_000)
        page.screenshot(path=str(shot), full_page=False)
        return page.get_by_text(re.compile(r"^Statistics over")).inner_text()
    finally:
        context.close()


def test_the_second_replica_reuses_the_first_ones_statistics(browser, cluster):
    url, replicas, tmp = cluster
    ports = {f"127.0.0.1:{r.port}" for r in replicas}
    routes: dict[str, str] = {}
    for i in range(64):  # a cookie value nginx hashes to each replica
        routes.setdefault(replica_of(url, f"session-{i}"), f"session-{i}")
        if len(routes) == 2:
            break
    assert set(routes) == ports, routes
    (a, route_a), (b, route_b) = sorted(routes.items())
    store = results.results_cache(tmp / "shared-cache" / "results")

    caption = open_activations(browser, url, route_a, tmp / "replica-a.png")
    first = results.counters(store, shared=True)
    assert first.get("activation_stats/misses") == 1, first  # computed once, by A
    assert [k for k in store.iterkeys() if k.startswith("activation_stats/")]

    assert open_activations(browser, url, route_b, tmp / "replica-b.png") == caption
    second = results.counters(store, shared=True)
    assert second["activation_stats/misses"] == 1, second  # B computed nothing ...
    assert second.get("activation_stats/hits", 0) >= 1  # ... it read A's statistics

    for route, replica in ((route_a, a), (route_b, b)):
        mine = requests_of(tmp / "access.log", route)
        assert {parts[1] for parts in mine} == {replica}, mine  # sticky
        assert any(p[2] == "101" and p[4] == "/_stcore/stream" for p in mine)  # websocket


def requests_of(log: Path, route: str) -> list[list[str]]:
    """The access log's requests of one session, once its websocket's line is there (nginx
    writes it when the connection closes, a moment after the browser left)."""
    for _ in range(100):
        mine = [line.split() for line in log.read_text().splitlines()
                if line.startswith(f"{route} ")]
        if any(p[4] == "/_stcore/stream" for p in mine):
            break
        time.sleep(0.1)
    return mine
