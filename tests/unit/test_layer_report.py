"""`insight stats` and the per-layer report it prints."""

from __future__ import annotations

import json

import numpy as np

from insight.data import dataset_for
from insight.model.layers import layer_paths
from insight.probe.report import REPORT_COLUMNS, layer_report, report_records


def test_stats_json_lists_every_layer(run_python, sample_path):
    proc = run_python("-m", "insight.cli", "stats", str(sample_path("digits_cnn")), "--json",
                      timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout)
    assert [r["layer"] for r in rows] == ["conv1", "pool1", "conv2", "flatten", "dense1",
                                          "dropout", "predictions"]
    for row in rows:
        assert {"layer", "mean", "std", "dead_fraction", "grad_norm"} <= set(row)
    by_layer = {r["layer"]: r for r in rows}
    assert by_layer["pool1"]["grad_norm"] is None  # no weights of its own
    assert by_layer["dense1"]["grad_norm"] > 0
    assert 0 <= by_layer["conv2"]["dead_fraction"] <= 1


def test_stats_unknown_data_exits_2(run_python, sample_path, tmp_path):
    proc = run_python("-m", "insight.cli", "stats", str(sample_path("digits_cnn")),
                      "--data", str(tmp_path / "missing.npz"), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_report_joins_stats_and_gradients(load_sample):
    loaded = load_sample("multi_io")
    dataset = dataset_for(loaded)
    table = layer_report(loaded, dataset.take(slice(0, 200)), batch_size=64)
    assert list(table.columns) == REPORT_COLUMNS
    assert table["layer"].tolist() == layer_paths(loaded.model)
    assert table.attrs["rows"] == 200
    assert table.attrs["target"].startswith("loss: ")
    records = report_records(table)
    assert all(isinstance(r["mean"], float) for r in records)
    merge = next(r for r in records if r["layer"] == "merge")
    assert merge["grad_norm"] is None and merge["activation_grad_norm"] > 0
    assert np.isfinite(table["std"]).all()
