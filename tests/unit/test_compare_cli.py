"""`insight compare`: text, JSON and the HTML report on two saved models; bad input is one
line and exit status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from insight.cli.main import main


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two small classifiers of one architecture (other seeds) and labelled data."""
    import keras

    folder = tmp_path_factory.mktemp("cmp_cli")
    for seed, name in ((0, "a.keras"), (1, "b.keras")):
        keras.utils.set_random_seed(seed)
        inp = keras.Input((6, 6, 1))
        h = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inp)
        h = keras.layers.Flatten(name="flat")(h)
        out = keras.layers.Dense(3, activation="softmax", name="out")(h)
        keras.Model(inp, out, name=name.split(".")[0]).save(folder / name)
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", x=rng.normal(size=(40, 6, 6, 1)).astype("float32"),
             y=rng.integers(0, 3, 40))
    return folder


def test_json_text_and_html_report(capsys, pair, tmp_path):
    """One run (both models load in checked children: seconds each) for all three outputs."""
    from insight.cli.compare import print_report

    report = tmp_path / "report.html"
    code = main(["compare", str(pair / "a.keras"), str(pair / "b.keras"), "--data",
                 str(pair / "data.npz"), "--json", "--out", str(report)])
    assert code == 0
    printed = capsys.readouterr().out
    out = json.loads(printed[:printed.rindex("}") + 1])
    assert printed.rstrip().endswith(f"report: {report}")
    assert out["summary"]["same"] == 3 and out["summary"]["changed"] == 0
    assert [r["layer"] for r in out["weight_changes"]] == ["conv", "out"]
    assert all(r["relative_change"] > 0.1 for r in out["weight_changes"])
    assert out["cka"]["layers_a"] == ["conv", "flat", "out"]
    assert np.asarray(out["cka"]["values"]).shape == (3, 3)
    assert 0 <= out["agreement"] <= 1
    assert out["per_class_accuracy"][-1]["class"] == "all"
    assert np.asarray(out["confusion"]).sum() == 40

    print_report(out)
    text = capsys.readouterr().out
    assert "layers: 3 same, 0 changed" in text and "agreement:" in text
    assert "CKA: each layer of A, its best match in B" in text

    page = report.read_text()
    assert page.count("plotly.js v") <= 2  # inlined once, not per figure
    for title in ("Architecture diff", "Accuracy per class", "Dead and saturated units"):
        assert title in page
    assert page.count("Plotly.newPlot") >= 5


@pytest.mark.parametrize("argv, words", [
    (["compare", "missing.keras", "b.keras"], "The A path does not exist"),
    (["compare", "{a}"], "Compare needs two models"),
    (["compare", "{a}", "{b}", "--out", "r.pdf"], "The report is an HTML file"),
    (["compare", "{a}", "{b}", "--examples", "2"], "at least 4 inputs"),
    (["compare", "{a}", "{bad}"], "Received"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, pair, tmp_path, argv, words):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    argv = [a.format(a=pair / "a.keras", b=pair / "b.keras", bad=bad) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and words in err and "\n" not in err
