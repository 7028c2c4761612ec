"""The statistics pass under `tf.distribute.MirroredStrategy` equals the single-device pass.

Two logical CPU devices must be configured before TensorFlow starts, so the passes run in a
child Python (this process has TensorFlow started already). The child computes the same
statistics of a small conv model over streamed TFRecord shards and over arrays in memory,
on one device and on both, and saves them; the test compares them here: counts, extremes,
dead units and histograms exactly, means and standard deviations to `rtol=1e-6` (float32
partial sums per device, accumulated in float64 in another order).
"""

from __future__ import annotations

import numpy as np
import pytest

RTOL = 1e-6

CHILD = r'''
import json, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
from types import SimpleNamespace
from insight.data.conform import dataset_for
from insight.data.shards import write_shards
from insight.probe.stats import activation_stats, replicas

keras.utils.set_random_seed(0)
inp = keras.Input((8, 8, 1), name="img")
h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
h = keras.layers.Flatten(name="flat")(h)
h = keras.layers.Dense(8, activation="tanh", name="dense")(h)
model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="out")(h))
rng = np.random.default_rng(0)
x = rng.normal(size=(301, 8, 8, 1)).astype("float32")  # 301: an odd last batch
pattern, _ = write_shards("shards", x, rng.integers(0, 3, 301), shards=3)
ds = dataset_for(SimpleNamespace(model=model, path="/none/m.keras"), pattern,
                 features="shards/features.json")
strategy = replicas("auto")
out = {"replicas": strategy.num_replicas_in_sync,
       "devices": [d.split("/")[-1] for d in strategy.extended.worker_devices]}
arrays = {}
for data_name, data in (("stream", ds), ("memory", x)):
    for devices in ("one", "two"):
        s = activation_stats(model, data, batch_size=64,
                             devices=None if devices == "one" else "auto")
        key = f"{data_name}_{devices}"
        out[key] = s.n_examples
        for layer, units in s.units.items():
            for col in ("mean", "std", "min", "max", "zero_fraction"):
                arrays[f"{key}|{layer}|{col}"] = units[col].to_numpy()
            arrays[f"{key}|{layer}|hist"] = s.histograms[layer][0]
            arrays[f"{key}|{layer}|edges"] = s.histograms[layer][1]
        for col in ("dead_units", "saturated_fraction"):
            arrays[f"{key}|table|{col}"] = s.table[col].to_numpy()
np.savez("stats.npz", **arrays)
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def passes(run_python, tmp_path_factory):
    import json

    folder = tmp_path_factory.mktemp("mirrored")
    (folder / "child.py").write_text(CHILD)
    proc = run_python("child.py", cwd=folder, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    with np.load(folder / "stats.npz") as saved:
        return info, {k: saved[k] for k in saved.files}


@pytest.mark.slow  # a child starting TensorFlow (~15 s on 2 cores)
def test_the_child_ran_on_two_replicas(passes):
    info, _ = passes
    assert info["replicas"] == 2 and info["devices"] == ["device:CPU:0", "device:CPU:1"]
    assert info["stream_one"] == info["stream_two"] == 301
    assert info["memory_one"] == info["memory_two"] == 301


@pytest.mark.slow
@pytest.mark.parametrize("data", ["stream", "memory"])
def test_two_devices_equal_one(passes, data):
    _, arrays = passes
    one = {k.split("|", 1)[1]: v for k, v in arrays.items() if k.startswith(f"{data}_one|")}
    two = {k.split("|", 1)[1]: v for k, v in arrays.items() if k.startswith(f"{data}_two|")}
    assert one.keys() == two.keys() and len(one) > 20
    for key, value in one.items():
        if key.endswith(("|mean", "|std", "|zero_fraction", "|saturated_fraction")):
            np.testing.assert_allclose(two[key], value, rtol=RTOL, atol=1e-7, equal_nan=True,
                                       err_msg=key)
        else:  # counts, extremes, histogram counts and edges: exact
            np.testing.assert_array_equal(two[key], value, err_msg=key)


@pytest.mark.slow
def test_streamed_equals_in_memory_on_two_devices(passes):
    _, arrays = passes
    for key, value in arrays.items():
        if key.startswith("memory_two|") and key.endswith(("|mean", "|min", "|max")):
            other = arrays[key.replace("memory_two|", "stream_two|")]
            np.testing.assert_allclose(other, value, rtol=RTOL, atol=1e-7, err_msg=key)
