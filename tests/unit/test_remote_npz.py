"""A data file in a bucket (`--data s3://bucket/x.npz`, or typed in the sidebar) is fetched
into insight's cache and read as the local file is, against a real S3 endpoint (moto)."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from insight.data import load_dataset
from insight.data.conform import dataset_for
from insight.errors import DataError, StorageError


@pytest.fixture(scope="module")
def model():
    inp = keras.Input((4,), name="x")
    return keras.Model(inp, keras.layers.Dense(2, activation="softmax")(inp))


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_a_remote_npz_is_fetched_and_read_like_a_local_one(model, s3, tmp_path,
                                                           monkeypatch):
    monkeypatch.setenv("INSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    x = np.arange(40, dtype="float32").reshape(10, 4)
    url = f"s3://{s3.bucket()}/data/x.npz"
    s3.put(url, _npz(x=x, y=np.arange(10) % 2, class_names=np.array(["no", "yes"])))
    ds = dataset_for(SimpleNamespace(model=model, path=Path("/nonexistent/m.keras")), url)
    np.testing.assert_array_equal(ds.x, x)
    assert ds.class_names == ["no", "yes"] and ds.y.tolist() == [0, 1] * 5
    assert ds.describe() == "x.npz: 10 examples, x (4,) float32, labels 2 classes"
    assert ds.path is None  # the cache's copy is never shown
    assert list((tmp_path / "cache").rglob("x.npz"))  # read from insight's cache
    csv = f"s3://{s3.bucket()}/data/t.csv"
    s3.put(csv, b"a,b,label\n1,2,0\n3,4,1\n")
    assert len(load_dataset(csv)) == 2


def test_remote_data_errors_name_the_url(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("INSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    bucket = s3.bucket()
    with pytest.raises(StorageError) as missing:
        load_dataset(f"s3://{bucket}/nothing.npz")
    assert missing.value.reason == "missing"
    assert "There is no file or folder" not in str(missing.value)
    s3.put(f"s3://{bucket}/bad.npz", b"not a zip at all")
    with pytest.raises(DataError) as corrupt:
        load_dataset(f"s3://{bucket}/bad.npz")
    assert f"s3://{bucket}/bad.npz" in str(corrupt.value) and "cache" not in str(corrupt.value)
    with pytest.raises(DataError, match="folders of images"):
        load_dataset(f"s3://{bucket}/images")


@pytest.mark.slow  # the model's isolated load, then the statistics (~10 s)
def test_cli_stats_reads_data_given_as_a_bucket_url(s3, tmp_path, monkeypatch, capsys):
    from insight.cli.main import main

    monkeypatch.setenv("INSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    digits = Path(__file__).resolve().parents[2] / "sample_models" / "digits_cnn"
    url = s3.upload(digits / "data.npz", f"s3://{s3.bucket()}/digits/data.npz")
    assert main(["stats", str(digits / "model.keras"), "--data", url, "--json"]) == 0, \
        capsys.readouterr().err
    assert '"layer"' in capsys.readouterr().out
