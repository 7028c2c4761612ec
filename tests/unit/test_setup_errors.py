"""Set-up errors that must name the right thing, early.

- PNG/SVG export and snapshots without kaleido (or pixelmatch) stop with one `error:` line
  before the model loads. kaleido is a dependency, so its absence is simulated in a child
  process with `sys.modules["kaleido"] = None` (the only way to make the import fail here).
- Images of another size are resized (and the dataset says so); other shapes get advice that
  fits them (resize images, reshape only when a reshape can work).
- A data path that cannot be used is a `DataError` before anything is read.
- `insight serve` on a port in use: one `error:` line naming `--port`, exit status 2, and the
  server never starts.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest

from insight.data import Dataset, conform_to_model
from insight.data.files import load_dataset
from insight.errors import DataError, UsageError

from ._errors import assert_error

# Runs the CLI with some modules made unimportable; prints whether TensorFlow was imported.
_WITHOUT = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
from insight.cli.main import main
rc = main(sys.argv[2:])
print("tensorflow imported:", "tensorflow" in sys.modules)
sys.exit(rc)
"""


def _cli_without(run_python, modules: str, *argv: str) -> subprocess.CompletedProcess:
    return run_python("-c", _WITHOUT, modules, *argv, timeout=120)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


# -- item 6: kaleido (and pixelmatch) missing ---------------------------------------------

@pytest.mark.parametrize("argv", [
    ("export", "digits_cnn", "--panel", "param_chart", "--out", "{tmp}/p.png"),
    ("export", "digits_cnn", "--panel", "param_chart", "--out", "{tmp}/p.svg"),
    ("export", "digits_cnn", "--all-panels", "--out", "{tmp}/gallery"),
    ("snapshot", "digits_cnn", "--baseline-dir", "{tmp}/base", "--panels", "param_chart"),
], ids=["png", "svg", "all-panels", "snapshot"])
def test_images_without_kaleido_fail_before_the_model_loads(run_python, tmp_path, argv):
    proc = _cli_without(run_python, "kaleido", *(a.format(tmp=tmp_path) for a in argv))
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = _one_error_line(proc)
    assert "kaleido" in line and "pip install 'kaleido>=1.0'" in line and "Received:" in line
    assert "tensorflow imported: False" in proc.stdout, "the model must not load first"
    assert not any(tmp_path.iterdir()), "nothing is written"


def test_html_export_needs_no_kaleido(run_python, tmp_path):
    out = tmp_path / "table.html"
    proc = _cli_without(run_python, "kaleido", "export", "digits_cnn", "--panel",
                        "layer_table", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_snapshot_without_pixelmatch_fails_before_the_model_loads(run_python, tmp_path):
    proc = _cli_without(run_python, "pixelmatch", "snapshot", "digits_cnn", "--baseline-dir",
                        str(tmp_path / "base"))
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = _one_error_line(proc)
    assert "pixelmatch" in line and "pip install" in line
    assert "tensorflow imported: False" in proc.stdout


def test_export_without_browser_fails_before_the_model_loads(run_python, tmp_path):
    env_free = tmp_path / "no-chromium"
    code = (f"import os; os.environ['INSIGHT_BROWSER'] = {str(env_free)!r}\n" + _WITHOUT)
    proc = run_python("-c", code, "", "export", "digits_cnn", "--all-panels", "--out",
                      str(tmp_path / "out"), timeout=120)
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = _one_error_line(proc)
    assert "INSIGHT_BROWSER" in line and "apt-get install chromium" in line
    assert "tensorflow imported: False" in proc.stdout


def test_check_rendering_names_the_package(monkeypatch):
    from insight.export.render import check_rendering

    monkeypatch.setitem(sys.modules, "kaleido", None)
    with pytest.raises(UsageError) as excinfo:
        check_rendering()
    assert_error(excinfo, UsageError, "kaleido package", "pip install 'kaleido>=1.0'",
                 "HTML exports need neither")


# -- item 7c: images of another size ------------------------------------------------------

@pytest.fixture(scope="module")
def image_model():
    import keras

    return keras.Sequential([keras.Input((8, 8, 1), name="image"), keras.layers.Flatten()],
                            name="image_model")


@pytest.fixture(scope="module")
def rgb_model():
    import keras

    return keras.Sequential([keras.Input((12, 10, 3), name="image"), keras.layers.Flatten()],
                            name="rgb_model")


def test_image_arrays_of_another_size_are_resized_and_said_so(image_model):
    x = np.zeros((3, 4, 4, 1), "float32")
    x[:, :2] = 1.0  # top half white
    ds = conform_to_model(image_model, Dataset(x=x, name="small.npz"))
    assert ds.x.shape == (3, 8, 8, 1) and ds.x.dtype == np.float32
    assert np.allclose(ds.x[:, 0], 1.0) and np.allclose(ds.x[:, -1], 0.0)
    assert ds.name == "small.npz (images resized from 4x4 to 8x8)"
    assert ds.describe().startswith("small.npz (images resized from 4x4 to 8x8): 3 examples")


def test_uint8_rgb_images_resized_without_rescaling(rgb_model):
    x = np.full((2, 32, 32, 3), 200, "uint8")
    ds = conform_to_model(rgb_model, Dataset(x=x))
    assert ds.x.shape == (2, 12, 10, 3) and ds.x.dtype == np.float32
    assert np.allclose(ds.x, 200.0)
    assert "images resized from 32x32 to 12x10" in ds.describe()


def test_right_size_has_no_note(image_model):
    ds = conform_to_model(image_model, Dataset(x=np.zeros((2, 8, 8, 1)), name="ok.npz"))
    assert ds.name == "ok.npz"


def test_multi_input_note_names_the_input():
    import keras

    a, b = keras.Input((8, 8, 1), name="pic"), keras.Input((3,), name="stats")
    model = keras.Model([a, b], keras.layers.Concatenate()([keras.layers.Flatten()(a), b]))
    ds = conform_to_model(model, Dataset(x={"pic": np.zeros((2, 16, 16, 1)),
                                            "stats": np.zeros((2, 3))}, name="d.npz"))
    assert ds.x["pic"].shape == (2, 8, 8, 1)
    assert ds.name == "d.npz (pic: images resized from 16x16 to 8x8)"


def test_grayscale_without_channel_axis_is_told_to_resize_not_reshape(image_model):
    with pytest.raises(DataError) as excinfo:
        conform_to_model(image_model, Dataset(x=np.zeros((5, 4, 4)), name="small.npy"))
    err = assert_error(excinfo, DataError, "(None, 8, 8, 1)", "(5, 4, 4)",
                       "need resizing, not reshaping", "x[..., None]", "folder of PNG/JPEG")
    assert "reshape(" not in str(err)


def test_other_channel_count_is_told_to_convert(image_model):
    with pytest.raises(DataError) as excinfo:
        conform_to_model(image_model, Dataset(x=np.zeros((5, 16, 16, 3)), name="rgb.npz"))
    err = assert_error(excinfo, DataError, "3 channels need converting to 1",
                       "resizes (N, H, W, 1) arrays to 8x8")
    assert "reshape(" not in str(err)


def test_reshape_advised_only_when_a_reshape_fits(image_model):
    with pytest.raises(DataError) as excinfo:
        conform_to_model(image_model, Dataset(x=np.zeros((5, 64))))
    assert_error(excinfo, DataError, "x.reshape(-1, 8, 8, 1)")
    with pytest.raises(DataError) as excinfo:
        conform_to_model(image_model, Dataset(x=np.zeros((5, 65))))
    err = assert_error(excinfo, DataError, "65 values", "takes 64", "no reshape fits")
    assert "reshape(" not in str(err)


def test_non_image_inputs_are_never_resized():
    import keras

    model = keras.Sequential([keras.Input((8, 8, 16)), keras.layers.Flatten()])
    with pytest.raises(DataError) as excinfo:
        conform_to_model(model, Dataset(x=np.zeros((2, 4, 4, 16))))
    assert_error(excinfo, DataError, "(None, 8, 8, 16)", "(2, 4, 4, 16)")


# -- item 7a/b: data paths ------------------------------------------------------------------

def test_check_data_path(tmp_path):
    from insight.data.files import check_data_path

    with pytest.raises(DataError) as excinfo:
        check_data_path(tmp_path / "missing.npz")
    assert_error(excinfo, DataError, "no file or folder", "missing.npz")
    notes = tmp_path / "notes.txt"
    notes.write_text("1 2 3\n")
    with pytest.raises(DataError) as excinfo:
        check_data_path(notes)
    assert_error(excinfo, DataError, ".txt files", "notes.txt")
    good = tmp_path / "x.npy"
    np.save(good, np.zeros((2, 3)))
    assert check_data_path(good) == good.resolve()
    assert check_data_path(tmp_path) == tmp_path.resolve()
    assert len(load_dataset(good)) == 2


# -- item 7d: a port in use ----------------------------------------------------------------

@pytest.fixture()
def busy_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


def test_check_port(busy_port):
    from insight.cli.serve import check_port

    with pytest.raises(UsageError) as excinfo:
        check_port("127.0.0.1", busy_port)
    assert_error(excinfo, UsageError, f"Port {busy_port} is already in use", "--port",
                 f"--port {busy_port + 1}")
    with pytest.raises(UsageError) as excinfo:
        check_port("localhost", busy_port)
    assert_error(excinfo, UsageError, "already in use")
    with pytest.raises(UsageError) as excinfo:
        check_port("127.0.0.1", 70000)
    assert_error(excinfo, UsageError, "between 1 and 65535")
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    check_port("127.0.0.1", port)  # free: no error


def test_serve_on_a_port_in_use_is_one_error_line(run_python, busy_port):
    proc = run_python("-m", "insight.cli", "serve", "--port", str(busy_port), timeout=60)
    assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-2000:])
    line = _one_error_line(proc)
    assert f"Port {busy_port} is already in use" in line and "--port" in line
    assert "serving" not in proc.stdout, "the server must not start"
