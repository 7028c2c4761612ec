"""`insight doctor` looks a remote `--logdir` (and a remote `--data` file) up in its storage
before the model loads, as serve does: a missing bucket or key, refused credentials or a
missing gs:// bucket are one `error:` line and exit 2, against real S3 and GCS endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from insight.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "sample_models" / "digits_cnn"


class _Loading(Exception):
    """Raised where the model would load: the checks before it passed."""


@pytest.fixture
def no_load(monkeypatch):
    def load(*args, **kwargs):
        raise _Loading

    monkeypatch.setattr("insight.model.loading.load_model", load)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _doctor(*args: str) -> int:
    return main(["doctor", str(DIGITS / "model.keras"), *args])


def test_doctor_refuses_a_missing_or_denied_s3_logdir_before_loading(s3, no_load, capsys):
    bucket = s3.bucket()
    logs = s3.upload(DIGITS / "logs", f"s3://{bucket}/runs")
    for args, words in ((["--logdir", "s3://no-such-bucket-insight/runs"],
                         "The bucket 'no-such-bucket-insight' does not exist"),
                        (["--logdir", f"s3://{bucket}/nothing"],
                         "Nothing exists at this remote path"),
                        (["--data", f"s3://{bucket}/data.npz"],
                         "Nothing exists at this remote path")):
        assert _doctor(*args) == 2
        line = _error_line(capsys)
        assert words in line and args[1] in line
    requests.post(f"{s3.endpoint}/moto-api/reset-auth", data="0", timeout=10)
    try:
        assert _doctor("--logdir", logs) == 2
    finally:
        requests.post(f"{s3.endpoint}/moto-api/reset-auth", data="inf", timeout=10)
    line = _error_line(capsys)
    assert "refused these credentials" in line and "testing" not in line
    with pytest.raises(_Loading):  # a logdir that is there: on to the model
        _doctor("--logdir", logs)


def test_doctor_refuses_a_missing_gs_logdir_before_loading(gcs, no_load, capsys):
    assert _doctor("--logdir", "gs://no-such-insight-store/runs") == 2
    assert "The bucket 'no-such-insight-store' does not exist" in _error_line(capsys)
    logs = gcs.upload(DIGITS / "logs", f"gs://{gcs.bucket()}/runs")
    with pytest.raises(_Loading):
        _doctor("--logdir", logs)
