"""`insight doctor`: the text report, JSON, and the exit codes a CI job gates on (0, 1 with
--fail-on, 2 on bad input). In-process: TensorFlow is loaded once."""

from __future__ import annotations

import json

import numpy as np
import pytest

from insight.cli.main import main


@pytest.fixture(scope="module")
def sick_folder(tmp_path_factory):
    """A 3-way softmax compiled with binary cross-entropy (an error), on raw 0-255 inputs (a
    warning), with its data and a CSV log beside it."""
    import keras

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("doctor_cli")
    model = keras.Sequential([keras.Input((6,), name="x"),
                              keras.layers.Dense(8, activation="relu", name="hidden"),
                              keras.layers.Dense(3, activation="softmax", name="probs")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.save(folder / "model.keras")
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", x=np.round(rng.uniform(0, 255, (60, 6))).astype("float32"),
             y=np.eye(3, dtype="float32")[rng.integers(0, 3, 60)])
    (folder / "logs").mkdir()
    (folder / "logs" / "history.csv").write_text(
        "epoch,loss,val_loss\n" + "".join(f"{i},{1 - 0.1 * i},{1 - 0.08 * i}\n"
                                           for i in range(5)))
    return folder


def test_text_report_of_the_healthy_sample_exits_0(capsys):
    assert main(["doctor", "digits_cnn"]) == 0
    out = capsys.readouterr().out
    assert "No problem found" in out
    assert "logdir: " in out and "digits_cnn/logs" in out  # the sample's logs by default
    assert "data: data.npz: 1,797 examples" in out
    assert "checked (3" in out and "could not check (3)" in out


def test_fail_on_and_json(capsys, sick_folder):
    path = str(sick_folder / "model.keras")
    assert main(["doctor", path, "--json"]) == 1  # an error reaches the default --fail-on
    report = json.loads(capsys.readouterr().out)
    assert sorted(report) == ["checked", "findings", "skipped"]
    checks = {f["check"]: f["severity"] for f in report["findings"]}
    assert checks["softmax_binary_crossentropy"] == "error"
    assert checks["input_scale"] == "warning"
    assert "loss_nan" in report["checked"]  # logs/ beside the model, used by default
    first = report["findings"][0]
    assert set(first) == {"check", "category", "severity", "layer", "evidence", "explanation",
                          "suggestion", "page", "panel"}


def test_fail_on_warning_counts_warnings(capsys, sick_folder, tmp_path):
    import shutil

    import keras

    # the same inputs under the right loss: only the input-scale warning is left
    model = keras.models.load_model(sick_folder / "model.keras", compile=False)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.save(tmp_path / "model.keras")
    shutil.copy(sick_folder / "data.npz", tmp_path / "data.npz")
    assert main(["doctor", str(tmp_path / "model.keras")]) == 0
    assert "WARNING input_scale" in capsys.readouterr().out
    assert main(["doctor", str(tmp_path / "model.keras"), "--fail-on", "warning"]) == 1


def test_bad_inputs_exit_2_with_one_error_line(capsys, tmp_path):
    assert main(["doctor", str(tmp_path / "missing.keras")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: MODEL is neither a file nor a bundled")
    assert main(["doctor", "digits_cnn", "--logdir", str(tmp_path / "nope")]) == 2
    assert "--logdir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["doctor", "digits_cnn", "--fail-on", "info"])

