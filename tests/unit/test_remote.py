"""insight.remote against a real S3 endpoint: URL rules, fetch into the content-addressed
cache, and each storage failure as one clear `StorageError`."""

from __future__ import annotations

import pytest

from insight.errors import StorageError, UsageError
from insight.remote import check_url, fetch, fetch_tree, filesystem, is_remote


@pytest.mark.parametrize("url", ["s3://AKIAXXX:secret@bucket/key", "s3://bucket/key?x=1",
                                 "http://bucket/key", "s3:///key", "gs://b/../etc"])
def test_refused_urls_never_echo_credentials(url):
    with pytest.raises(UsageError) as err:
        check_url(url)
    assert "secret" not in str(err.value)
    assert "Received:" in str(err.value)


def test_is_remote_only_for_storage_schemes():
    assert is_remote("s3://b/k") and is_remote("GS://b/k") and is_remote("gcs://b")
    assert not is_remote("/tmp/x") and not is_remote("http://x/y") and not is_remote(None)


def test_fetch_once_per_version(s3, tmp_path):
    bucket = s3.bucket()
    url = s3.put(f"s3://{bucket}/models/m.keras", b"first" * 1000)
    local = fetch(url)
    assert local.name == "m.keras" and local.read_bytes() == b"first" * 1000
    local.chmod(0o644)
    stamp = local.stat().st_mtime_ns
    assert fetch(url) == local and local.stat().st_mtime_ns == stamp  # not downloaded again
    s3.put(url, b"second")
    changed = fetch(url)
    assert changed != local and changed.read_bytes() == b"second"


def test_fetch_tree_keeps_relative_paths(s3, tmp_path):
    bucket = s3.bucket()
    src = tmp_path / "ckpt"
    (src / "sub").mkdir(parents=True)
    (src / "a.weights.h5").write_bytes(b"a")
    (src / "sub" / "b.txt").write_bytes(b"b")
    local = fetch_tree(s3.upload(src, f"s3://{bucket}/runs/ckpt"))
    assert (local / "a.weights.h5").read_bytes() == b"a"
    assert (local / "sub" / "b.txt").read_bytes() == b"b"
    assert fetch_tree(f"s3://{bucket}/runs/ckpt/") == local


def test_missing_bucket_and_key(s3):
    with pytest.raises(StorageError) as err:
        fetch("s3://no-such-bucket-here/m.keras")
    assert err.value.reason == "missing" and "Received:" in str(err.value)
    bucket = s3.bucket()
    with pytest.raises(StorageError) as err:
        fetch(f"s3://{bucket}/nothing.keras")
    assert err.value.reason == "missing"
    with pytest.raises(StorageError, match="empty or does not exist"):
        fetch_tree(f"s3://{bucket}/nothing")


def test_dropped_connection_is_a_clear_error(s3, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    fs, key = filesystem("s3://bucket/key")
    from insight.remote import storage_errors

    with pytest.raises(StorageError) as err, storage_errors("s3://bucket/key"):
        fs.cat(key)
    assert err.value.reason == "connection"


def test_typed_remote_paths_only_on_an_open_local_server(tmp_path):
    from insight.paths import typed_path

    assert typed_path(" s3://bucket/runs/ ", root=None, locked=False) == "s3://bucket/runs"
    for root, locked in ((tmp_path, False), (None, True), (tmp_path, True)):
        with pytest.raises(UsageError, match="does not open remote paths"):
            typed_path("s3://bucket/runs", root=root, locked=locked)


def test_connection_hint_names_the_schemes_own_endpoint():
    from insight.remote import translate

    assert "STORAGE_EMULATOR_HOST" in str(translate(ConnectionError("x"), "gs://b/k"))
    assert "AWS_ENDPOINT_URL" in str(translate(TimeoutError("x"), "s3://b/k"))
    assert translate(PermissionError("x"), "s3://b/k").reason == "denied"
