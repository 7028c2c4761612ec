"""gs:// against a real GCS endpoint (gcp-storage-emulator's server on loopback, through
`STORAGE_EMULATOR_HOST`): a logdir read like the local one, a model fetched and loaded in
the isolated loader and by the CLI, and a missing bucket or an unreachable endpoint as one
`StorageError` line, quickly and with nothing from gcsfs on stderr."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from insight import load_model
from insight.curves.logdir import read_scalars
from insight.curves.remote import forget_listings
from insight.errors import StorageError
from insight.model.samples import get_sample
from insight.remote import cache_root, filesystem

ROOT = Path(__file__).resolve().parents[2]
LOGS = get_sample("digits_cnn").logdir


@pytest.fixture(autouse=True)
def _fresh_listings():
    forget_listings()
    yield
    forget_listings()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "insight", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=300, cwd=ROOT)


def _sorted(frame):
    key = ["run", "tag", "step"]
    return frame.astype({"run": str, "tag": str}).sort_values(key, kind="stable") \
        .reset_index(drop=True)


def test_gs_logdir_reads_like_the_local_one(gcs):
    url = gcs.upload(LOGS, f"gs://{gcs.bucket()}/runs")
    remote, local = _sorted(read_scalars(url)), _sorted(read_scalars(LOGS))
    assert sorted(remote.run.unique()) == ["train", "validation"] and len(remote) == 70
    assert remote[["run", "tag", "step"]].equals(local[["run", "tag", "step"]])
    np.testing.assert_array_equal(remote.value.to_numpy(), local.value.to_numpy())
    np.testing.assert_array_equal(remote.wall_time.to_numpy(), local.wall_time.to_numpy())


def test_emulator_is_read_through_the_json_api(gcs):
    # gcsfs's default class asks a gRPC API for each bucket's layout, which an emulator
    # does not serve: with credentials set every operation waits out 60 s of retries.
    fs, key = filesystem(f"gs://{gcs.bucket()}/runs")
    assert type(fs).__module__ == "gcsfs.core" and key.endswith("/runs")


def test_gs_model_loads_isolated_from_its_cached_copy(gcs, model_files):
    url = gcs.upload(model_files.tiny_keras, f"gs://{gcs.bucket()}/models/tiny.keras")
    loaded = load_model(url, isolate=True)
    assert loaded.source == url and loaded.model.name == "tiny"
    assert loaded.path.is_relative_to(cache_root()) and loaded.path.name == "tiny.keras"
    assert loaded.path.read_bytes() == model_files.tiny_keras.read_bytes()


def test_cli_summary_of_a_gs_model_and_a_missing_bucket(gcs, model_files):
    url = gcs.upload(model_files.tiny_keras, f"gs://{gcs.bucket()}/m/tiny.keras")
    env = {**gcs.env, "INSIGHT_CACHE_DIR": os.environ["INSIGHT_CACHE_DIR"]}
    ok = _cli(env, "summary", url)
    assert ok.returncode == 0, ok.stderr
    assert f"file: {url}" in ok.stdout and "d1" in ok.stdout
    assert "gcsfs" not in ok.stderr and "bucket type" not in ok.stderr, ok.stderr
    gone = _cli(env, "summary", "gs://no-such-insight-store/m/tiny.keras")
    assert gone.returncode == 2
    assert gone.stderr.strip().splitlines() == [
        "error: The bucket 'no-such-insight-store' does not exist (or is not visible to "
        "these credentials). Check the bucket and key (they are case-sensitive). "
        "Received: path='gs://no-such-insight-store/m/tiny.keras'"], gone.stderr


def test_missing_gs_bucket_and_key_fail_at_once(gcs):
    start = time.monotonic()
    with pytest.raises(StorageError) as err:
        read_scalars("gs://no-such-insight-store/runs")
    assert err.value.reason == "missing" and time.monotonic() - start < 2
    assert "'no-such-insight-store' does not exist" in str(err.value)
    bucket = gcs.bucket()
    with pytest.raises(StorageError) as err:
        load_model(f"gs://{bucket}/models/nothing.keras", isolate=True)
    assert err.value.reason == "missing" and "Nothing exists" in str(err.value)


def test_unreachable_endpoint_is_one_connection_error(gcs, tmp_path):
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
           "INSIGHT_CACHE_DIR": str(tmp_path / "cache")}
    start = time.monotonic()
    down = _cli(env, "summary", "gs://runs-store/m/tiny.keras")
    took = time.monotonic() - start
    assert down.returncode == 2, down.stderr
    lines = down.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: The connection to the storage"), \
        down.stderr
    # said at once, not after gcsfs's six retries with backoff (30-odd seconds)
    assert "STORAGE_EMULATOR_HOST" in lines[0] and took < 20
