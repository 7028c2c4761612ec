"""Remote logdirs (`s3://`) through the one event reader, against a real S3 endpoint (moto's
server): the same frame as the local read, the kept listing, a live tail that re-reads only
the appended range, and missing, denied and dropped storage as `StorageError` that lose
nothing. The Training page on a remote logdir under AppTest."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from insight.curves.logdir import Logdir, logdir_stamp, read_scalars
from insight.curves.remote import as_url, forget_listings, listing, relist
from insight.errors import StorageError
from insight.model.samples import get_sample
from unit import _s3

SAMPLE = get_sample("digits_cnn")
LOGS = SAMPLE.logdir


@pytest.fixture(autouse=True)
def _fresh_listings():
    forget_listings()
    yield
    forget_listings()


def _events(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if "tfevents" in p.name)


def _frames_equal(a, b) -> None:
    key = ["run", "tag", "step"]
    a = a.astype({"run": str, "tag": str}).sort_values(key, kind="stable").reset_index(drop=True)
    b = b.astype({"run": str, "tag": str}).sort_values(key, kind="stable").reset_index(drop=True)
    assert a[key].equals(b[key])
    np.testing.assert_array_equal(a.value.to_numpy(), b.value.to_numpy())
    np.testing.assert_array_equal(a.wall_time.to_numpy(), b.wall_time.to_numpy())


def test_remote_logdir_reads_like_the_local_one(s3):
    url = s3.upload(LOGS, f"s3://{s3.bucket()}/runs")
    remote = read_scalars(url)
    assert sorted(remote.run.unique()) == ["train", "validation"] and len(remote) == 70
    _frames_equal(remote, read_scalars(LOGS))
    # one event file, a CSVLogger CSV and a history JSON by URL
    one = _events(LOGS / "validation")[0]
    single = read_scalars(s3.upload(one, f"s3://{s3.bucket()}/validation/{one.name}"))
    assert list(single.run.unique()) == ["validation"]
    _frames_equal(single, read_scalars(one))
    for name in ("history.csv", "history.json"):
        local = LOGS.parent / name
        _frames_equal(read_scalars(s3.upload(local, f"s3://{s3.bucket()}/{name}")),
                      read_scalars(local))


def test_a_path_made_from_a_url_is_still_the_url(s3):
    url = s3.upload(LOGS, f"s3://{s3.bucket()}/runs")
    assert as_url(Path(url)) == url and as_url(LOGS) is None
    assert logdir_stamp(Path(url)) == logdir_stamp(url) == listing(url).stamp
    assert len(Logdir(Path(url)).scalars()) == 0 and len(read_scalars(Path(url))) == 70


def test_listing_is_kept_until_relisted(s3):
    bucket = s3.bucket()
    url = f"s3://{bucket}/runs"
    s3.upload(LOGS / "train", f"{url}/train")
    first = logdir_stamp(url)
    s3.upload(LOGS / "validation", f"s3://{bucket}/runs/validation")
    assert logdir_stamp(url) == first  # a rerun within LISTING_TTL: no new listing
    logs = Logdir(url)
    logs.refresh()
    assert {r for r, _ in logs.series()} == {"train"}
    relist(url)  # the live mode's explicit refresh
    assert logdir_stamp(url) != first
    logs.refresh()
    assert {r for r, _ in logs.series()} == {"train", "validation"}


def test_live_tail_reads_only_the_appended_range(s3, monkeypatch):
    proxy = _Proxy(s3.endpoint)  # counts the bytes the storage sends
    proxy.up()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    _s3.clear_fs_cache()
    data = _events(LOGS / "train")[0].read_bytes()
    url = f"s3://{s3.bucket()}/runs/train/events.out.tfevents.1.v2"
    cut = len(data) // 2 + 5  # mid-record: the incomplete tail waits for the writer
    s3.put(url, data[:cut])
    logs = Logdir(url.rsplit("/", 2)[0])
    logs.refresh()
    reader = next(iter(logs._files.values()))
    head = reader.offset
    assert 0 < head < cut and reader.pending == cut - head
    before = logs.scalars()
    # The next upload's first bytes are zeros: a reader that read the object again from the
    # start would find damage and lose those points. Only [head, end) may be fetched.
    s3.put(url, bytes(head) + data[head:])
    sent = proxy.sent
    logs.refresh(relist=True)
    # the appended range and a listing's XML; the whole object again would be `head` more
    assert proxy.sent - sent < len(data) - head + 8_000 < len(data)
    assert reader.damaged == 0 and reader.pending == 0 and reader.offset == len(data)
    full = read_scalars(_events(LOGS / "train")[0])
    _frames_equal(logs.scalars(), full)
    assert len(before) < len(full)
    proxy.down()


def test_missing_bucket_prefix_and_denied_credentials(s3, monkeypatch):
    with pytest.raises(StorageError, match="does not exist") as err:
        read_scalars("s3://no-such-bucket-for-insight/runs")
    assert err.value.reason == "missing" and "Received: path=" in str(err.value)
    assert logdir_stamp("s3://no-such-bucket-for-insight/runs") == "error:missing"
    with pytest.raises(StorageError, match="Nothing exists") as err:
        read_scalars(f"s3://{s3.bucket()}/runs")
    assert err.value.reason == "missing"
    url = s3.upload(LOGS, f"s3://{s3.bucket()}/runs")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    _s3.clear_fs_cache()
    with pytest.raises(StorageError) as err:
        read_scalars(url)
    assert err.value.reason == "denied" and "AWS_ACCESS_KEY_ID" in str(err.value)


class _Proxy:
    """A TCP relay in front of the S3 server that can drop every connection and refuse new
    ones (`down()`), then accept again on the same port (`up()`)."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit("//", 1)[1].split(":")
        self.target = (host, int(port))
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.sent = 0  # bytes from the server to the client so far

    def up(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def down(self) -> None:
        try:  # wakes the thread blocked in accept(); close() alone leaves it accepting
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        for c in self._conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b, a is server),
                                 daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket, count: bool) -> None:
        try:
            while chunk := a.recv(65536):
                b.sendall(chunk)
                if count:
                    self.sent += len(chunk)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_dropped_connection_keeps_what_was_read_and_resumes(s3, monkeypatch):
    proxy = _Proxy(s3.endpoint)
    proxy.up()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    _s3.clear_fs_cache()
    bucket = s3.bucket()
    data = _events(LOGS / "train")[0].read_bytes()
    url = f"s3://{bucket}/runs"
    s3.put(f"{url}/train/events.out.tfevents.1.v2", data[:len(data) // 3])
    logs = Logdir(url)
    logs.refresh()
    reader = next(iter(logs._files.values()))
    offset, points = reader.offset, len(logs.scalars())
    s3.put(f"{url}/train/events.out.tfevents.1.v2", data)  # the writer goes on
    listing(url, fresh=True)  # listed while up, then the connection drops mid-tail
    proxy.down()
    with pytest.raises(StorageError) as err:
        logs.refresh()
    assert err.value.reason == "connection" and "what was read so far is kept" in str(err.value)
    assert reader.offset == offset and len(logs.scalars()) == points
    with pytest.raises(StorageError):  # the live mode's relist fails the same way
        logs.refresh(relist=True)
    assert reader.offset == offset and len(logs.scalars()) == points
    proxy.up()
    logs.refresh(relist=True)
    assert reader.offset == len(data) and reader.damaged == 0
    _frames_equal(logs.scalars(), read_scalars(_events(LOGS / "train")[0]))
    proxy.down()


def test_a_file_that_fails_does_not_stop_the_others(s3):
    bucket = s3.bucket()
    url = s3.upload(LOGS, f"s3://{bucket}/runs")
    listing(url)  # both files listed; the first vanishes before its bytes are fetched
    gone = _events(LOGS / "train")[0]
    s3.client.delete_object(Bucket=bucket, Key=f"runs/train/{gone.name}")
    logs = Logdir(url)
    with pytest.raises(StorageError) as err:
        logs.refresh()
    assert err.value.reason == "missing" and gone.name in str(err.value)
    assert {r for r, _ in logs.series()} == {"validation"}  # the next file was still read


def test_training_page_on_a_remote_logdir(s3):
    from streamlit.testing.v1 import AppTest

    from insight.ui.shell import PAGE_DIR

    url = s3.upload(LOGS, f"s3://{s3.bucket()}/runs")

    def page(logdir: str) -> AppTest:
        at = AppTest.from_file(str(PAGE_DIR / "training.py"), default_timeout=120)
        at.session_state["insight_ref"] = None
        at.session_state["insight_logdir"] = logdir
        return at.run()

    at = page(url)
    assert not at.exception, at.exception
    titles = {json.loads(c.proto.spec)["layout"]["title"]["text"].split("<br>")[0]
              for c in at.get("plotly_chart")}
    assert {"epoch_loss", "epoch_accuracy"} <= titles
    assert any(url in c.value and "70 points" in c.value for c in at.caption)
    missing = page("s3://no-such-bucket-for-insight/runs")
    assert not missing.exception, missing.exception
    assert any(e.value.startswith("**Cannot read the logdir.**") and "does not exist" in e.value
               and "no-such-bucket-for-insight" in e.value
               for e in missing.error)
    assert missing.title[0].value == "Training"
