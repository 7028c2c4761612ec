"""`insight profile` on streamed data (TFRecord shards with --features, --max-examples), and
the command the Profiler page's Capture button runs with the data the server streams."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from insight.cli.main import main
from insight.data.shards import write_shards
from insight.launch import parse_app_args
from insight.profiler.capture import find_profiles
from insight.ui.profiler import capture_command


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("profile_stream")
    keras.utils.set_random_seed(5)
    inp = keras.Input((6,), name="x")
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(8)(inp))
    model = keras.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.save(folder / "tiny.keras")
    rng = np.random.default_rng(0)
    pattern, _ = write_shards(folder / "shards", rng.normal(size=(200, 6)).astype("float32"),
                              rng.integers(0, 3, 200), shards=2)
    return SimpleNamespace(model=str(folder / "tiny.keras"), pattern=pattern,
                           spec=str(folder / "shards" / "features.json"))


@pytest.mark.slow  # the model's isolated load, then a profiled training run (~15 s)
def test_the_capture_buttons_command_profiles_the_served_stream(tiny, tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.delenv("TF_CPU_ALLOCATOR_USE_BFC", raising=False)  # the command sets it
    opts = parse_app_args(["--model", tiny.model, "--data", tiny.pattern, "--features",
                           tiny.spec, "--max-examples", "150"])
    ref = SimpleNamespace(path=tiny.model, safe_mode=True, custom_objects=None)
    cmd = capture_command(ref, tmp_path / "logs", 2, train=True, xla=False,
                          data=tiny.pattern, opts=opts)
    assert cmd[:3] == [sys.executable, "-m", "insight.cli"]
    assert cmd[cmd.index("--features") + 1] == tiny.spec
    assert cmd[cmd.index("--max-examples") + 1] == "150"
    # the command itself, in this process: training steps need the stream's labels
    assert main([*cmd[3:], "--warmup", "1", "--batch-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "steps: 2, mean" in out, out
    assert [r.label for r in find_profiles(tmp_path / "logs")]
    # another data path than the served one gets no --features; no data: the served builder
    other = capture_command(ref, tmp_path, 2, train=False, xla=False, data="/d/x.npz",
                            opts=opts)
    assert "--features" not in other
    built = capture_command(ref, tmp_path, 2, train=False, xla=False, data=None,
                            opts=parse_app_args(["--data-fn", "/d/fn.py"]))
    assert built[-2:] == ["--data-fn", "/d/fn.py"] and "--data" not in built


def test_streamed_data_is_checked_before_the_model_loads(tiny, tmp_path, capsys,
                                                         monkeypatch):
    import insight.model.loading as loading

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before the data was checked")

    monkeypatch.setattr(loading, "load_model", never)
    assert main(["profile", tiny.model, "--logdir", str(tmp_path), "--data",
                 tiny.pattern]) == 2  # shards without their spec
    assert "--features" in capsys.readouterr().err
    assert main(["profile", tiny.model, "--logdir", str(tmp_path), "--data",
                 str(Path(tiny.pattern).parent / "none-*.tfrecord"), "--features",
                 tiny.spec]) == 2
    assert "No TFRecord shard matches" in capsys.readouterr().err
