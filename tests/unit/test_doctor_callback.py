"""`DoctorCallback`: the doctor's cheap checks during `fit`, written to doctor.jsonl and as
TensorBoard text, stopping a diverging run when asked; quiet on a healthy fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from insight.callbacks import DoctorCallback
from insight.doctor.log import read_findings
from insight.errors import UsageError

from ._doctor import data, mlp


def _fit(model, callback, epochs=6, **kw):
    ds = data()
    return model.fit(ds.x, ds.y, validation_split=0.25, epochs=epochs, batch_size=16,
                     verbose=0, callbacks=[callback], **kw)


def test_bad_arguments():
    for kw, match in (({"freq": 0}, "freq must be"), ({"examples": 0}, "examples must be"),
                      ({"stop_on": "info"}, "stop_on must be")):
        with pytest.raises(UsageError, match=match):
            DoctorCallback("logs", **kw)


def test_a_healthy_fit_writes_nothing(tmp_path):
    import keras

    ds = data()
    cb = DoctorCallback(tmp_path, ds.x, ds.y)
    _fit(mlp(hidden=(16,), optimizer=keras.optimizers.Adam(0.01)), cb)
    assert cb.findings == [] and cb.stopped_by is None
    assert not (tmp_path / "doctor.jsonl").exists()


def test_a_diverging_fit_is_stopped_at_the_first_error(tmp_path):
    import keras

    ds = data()
    x = ds.x * 50  # with this rate, the loss blows up within a few epochs
    model = mlp(hidden=(16, 16), optimizer=keras.optimizers.SGD(learning_rate=5.0))
    cb = DoctorCallback(tmp_path, x, ds.y, stop_on="error")
    history = model.fit(x, ds.y, epochs=30, batch_size=16, verbose=0, callbacks=[cb])
    assert cb.stopped_by is not None and cb.stopped_by.severity == "error"
    assert len(history.history["loss"]) < 30
    checks = [f.check for _, f in cb.findings]
    assert "learning_rate_setting" in checks  # the setup, checked when training starts
    assert cb.stopped_by.category in ("nan_inf", "learning_rate_high")
    lines = [json.loads(line) for line in (tmp_path / "doctor.jsonl").read_text().splitlines()]
    assert [line["check"] for line in lines] == checks
    assert {"step", "epoch", "time", "severity", "evidence"} <= set(lines[-1])
    assert [f.check for _, f in read_findings(tmp_path)] == checks
    events = list((tmp_path / "doctor").glob("events.out.tfevents.*"))
    assert events and b"doctor/" + cb.stopped_by.check.encode() in events[0].read_bytes()


def test_every_n_batches_and_the_setup_at_the_start(tmp_path):
    """A softmax under binary cross-entropy is found before the first batch; with freq=n
    the curves are the running means Keras logs."""
    cb = DoctorCallback(tmp_path, freq=3)
    ds = data()
    one_hot = np.eye(3, dtype="float32")[ds.y]
    mlp(loss="binary_crossentropy").fit(ds.x, one_hot, epochs=2, batch_size=16, verbose=0,
                                        callbacks=[cb])
    assert [(step, f.check) for step, f in cb.findings][:1] == \
        [(0, "softmax_binary_crossentropy")]
    assert cb._batches == 16  # 8 batches x 2 epochs


def test_the_batch_hook_is_off_when_checking_per_epoch():
    from keras.src import utils

    assert utils.is_default(DoctorCallback("logs").on_train_batch_end)
    assert not utils.is_default(DoctorCallback("logs", freq=5).on_train_batch_end)
