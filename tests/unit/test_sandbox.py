"""The isolated loader (`insight.model.sandbox`): real child processes, real bombs.

The hostile files are generated here, in tmp dirs: a `.keras` whose config is millions of
`{}`, one declaring `Dense(units=100_000_000)`, one whose `config.json` inflates to 1 GiB; a
`--custom-objects` file that crashes the loader (SIGSEGV), one that hangs it, one whose class
tries to start a process while Keras deserializes it in safe mode.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from insight.errors import (
    LoaderCrashError,
    LoadLimitError,
    UnsafeModelError,
    UsageError,
)
from insight.launch import LaunchOptions, app_argv, parse_app_args
from insight.model.limits import parse_size
from insight.model.sandbox import (
    LoadLimits,
    check_in_child,
    prestart,
    scrubbed_env,
    stop_spare,
)

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "sample_models" / "digits_cnn" / "model.keras"
META = json.dumps({"keras_version": "3.15.1", "date_saved": "2026-01-01@00:00:00"})
LAYER = {"module": "keras.layers", "registered_name": None}


def _archive(path: Path, chunks) -> Path:
    """A `.keras` zip whose config.json is written from `chunks` (streamed: the test process
    never holds the inflated config)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("metadata.json", META)
        with z.open("config.json", "w", force_zip64=True) as f:
            for chunk in chunks:
                f.write(chunk)
        z.writestr("model.weights.h5", b"")
    return path


def _sequential(*layers: dict) -> bytes:
    inp = {**LAYER, "class_name": "InputLayer",
           "config": {"batch_shape": [None, 30], "dtype": "float32", "sparse": False,
                      "name": "x"}}
    return json.dumps({"module": "keras", "class_name": "Sequential", "registered_name": None,
                       "config": {"name": "s", "trainable": True, "layers": [inp, *layers]},
                       "build_config": {"input_shape": [None, 30]}}).encode()


def empties_bomb(path: Path, count: int = 20_000_000) -> Path:
    """A Sequential whose layer list is `count` `{}` (60 MB inflated, ~0.1 MB on disk)."""
    head = b'{"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": ['
    block = b"{}," * 1_000_000
    return _archive(path, [head, *[block] * (count // 1_000_000), b'{}]}}'])


def dense_bomb(path: Path) -> Path:
    """Dense(units=100_000_000) after a 30-wide input: a 12 GB kernel, in under 1 KB."""
    init = {"module": "keras.initializers", "class_name": "GlorotUniform",
            "config": {"seed": None}, "registered_name": None}
    dense = {**LAYER, "class_name": "Dense", "build_config": {"input_shape": [None, 30]},
             "config": {"name": "d", "units": 100_000_000, "activation": "linear",
                        "use_bias": True, "kernel_initializer": init}}
    return _archive(path, [_sequential(dense)])


def big_config(path: Path) -> Path:
    """A valid small config padded with 1 GiB of spaces (~1 MB on disk)."""
    body = _sequential()
    return _archive(path, [body[:-1], *[b" " * (1 << 24)] * 64, b"}"])


def probe_model(path: Path) -> Path:
    """A model with one custom layer, `SandboxProbe>Probe` (see `PROBE_LAYER`)."""
    probe = {"module": None, "class_name": "Probe", "registered_name": "SandboxProbe>Probe",
             "config": {"name": "p", "trainable": True}}
    return _archive(path, [_sequential(probe)])


PROBE_LAYER = '''
import os
import keras

# The --custom-objects file itself is the user's, run before the guard: it may write.
with open({env_out!r}, "w") as f:
    f.write("\\n".join(sorted(os.environ)))

@keras.saving.register_keras_serializable(package="SandboxProbe")
class Probe(keras.layers.Layer):
    @classmethod
    def from_config(cls, config):
        os.system("touch {marker}")  # what a safe_mode bypass would do
        return cls(**config)
'''

QUIET_LAYER = '''
import keras

@keras.saving.register_keras_serializable(package="SandboxProbe")
class Probe(keras.layers.Layer):
    @classmethod
    def from_config(cls, config):
        try:  # a quiet bypass: no process, no socket, one file, the error swallowed
            with open({marker!r}, "w") as f:
                f.write("ran")
        except Exception:
            pass
        return cls(**config)
'''


@pytest.fixture(scope="module")
def spares():
    """A child that has imported Keras waits for each check, as in a warm server; the next
    one starts while the current one runs (two cores: about half the wall time)."""
    yield prestart
    stop_spare()


def test_limits_parse():
    assert LoadLimits.parse(env={}) == LoadLimits(60.0, 8 * 2**30)
    assert LoadLimits.parse("2.5", "512M", env={}) == LoadLimits(2.5, 512 * 2**20)
    env = {"INSIGHT_LOAD_TIMEOUT": "30", "INSIGHT_LOAD_MEMORY": "4G"}
    assert LoadLimits.parse(env=env) == LoadLimits(30.0, 4 * 2**30)
    assert LoadLimits.parse("10", None, env=env).timeout_s == 10.0  # the flag wins
    assert parse_size("1.5GiB") == int(1.5 * 2**30)
    assert LoadLimits(memory_bytes=8 * 2**30).memory_text == "8 GB"
    for bad in ("0", "-1", "soon", "nan"):
        with pytest.raises(UsageError, match="--load-timeout"):
            LoadLimits.parse(bad, env={})
    for bad in ("8X", "10", "", "G"):
        with pytest.raises(UsageError, match="--load-memory"):
            parse_size(bad)


def test_launch_options_carry_limits():
    opts = parse_app_args(["m.keras", "--load-timeout", "30", "--load-memory", "4G"], env={})
    assert (opts.load_timeout, opts.load_memory) == ("30", "4G")
    assert parse_app_args(app_argv(opts), env={}) == opts
    env = parse_app_args([], env={"INSIGHT_LOAD_TIMEOUT": "5", "INSIGHT_LOAD_MEMORY": "1G"})
    assert (env.load_timeout, env.load_memory) == ("5", "1G")
    assert LaunchOptions().load_timeout is None


def test_scrubbed_env_keeps_what_tensorflow_reads():
    env = scrubbed_env({"PATH": "/bin", "HOME": "/h", "LC_ALL": "C", "TF_ENABLE_ONEDNN_OPTS": "0",
                        "CUDA_VISIBLE_DEVICES": "", "AWS_SECRET_ACCESS_KEY": "s",
                        "INSIGHT_TOKEN": "t", "GITHUB_TOKEN": "g", "SSH_AUTH_SOCK": "/a"})
    assert {"PATH", "HOME", "LC_ALL", "TF_ENABLE_ONEDNN_OPTS", "CUDA_VISIBLE_DEVICES"} <= set(env)
    secrets = {"AWS_SECRET_ACCESS_KEY", "INSIGHT_TOKEN", "GITHUB_TOKEN", "SSH_AUTH_SOCK"}
    assert not secrets & set(env)


def _cli(args: list[str], tmp_path: Path) -> tuple[int, str, int]:
    """Run `insight` in a fresh process; (exit status, stderr, the CLI process's own peak
    RSS in bytes: VmHWM, which leaves the loader child out)."""
    code = ("import sys\nfrom insight.cli.main import main\nrc = main(sys.argv[1:])\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "print(int(hwm.split()[1]) * 1024)\nsys.stdout.flush()\nimport os; os._exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=240, cwd=tmp_path)
    return proc.returncode, proc.stderr, int(proc.stdout.split()[-1])


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_config_of_millions_of_empty_objects_stops_at_the_limit(tmp_path):
    bomb = empties_bomb(tmp_path / "empties.keras")
    assert bomb.stat().st_size < 200_000
    started = time.monotonic()
    rc, err, parent = _cli(["summary", str(bomb), "--load-memory", "1G"], tmp_path)
    assert rc == 2
    line = _one_error_line(err)  # the preflight's static checks, or else the memory limit
    assert "zip bomb" in line or "config" in line or "more than 1 GB" in line, line
    assert parent < 300 * 2**20  # the CLI never parsed the config, nor started TensorFlow
    assert time.monotonic() - started < 30


@pytest.mark.slow
def test_inflating_config_is_refused_with_the_parent_bounded(tmp_path):
    bomb = big_config(tmp_path / "big.keras")
    assert bomb.stat().st_size < 2_000_000
    rc, err, parent = _cli(["summary", str(bomb), "--load-memory", "1G"], tmp_path)
    assert rc == 2
    line = _one_error_line(err)  # the preflight's size check, or else the memory limit
    assert "config.json" in line or "more than 1 GB" in line, line
    assert parent < 300 * 2**20


@pytest.mark.slow
def test_dense_of_a_hundred_million_units_stops_at_the_limit(tmp_path):
    bomb = dense_bomb(tmp_path / "dense.keras")
    assert bomb.stat().st_size < 2_000
    rc, err, parent = _cli(["summary", str(bomb), "--load-memory", "2G"], tmp_path)
    assert rc == 2
    line = _one_error_line(err)
    assert "needed more than 2 GB of memory" in line and "--load-memory" in line
    assert parent < 1.5 * 2**30  # TensorFlow's own import, not the 12 GB kernel


@pytest.mark.slow
def test_a_crash_costs_the_child_only(spares, tmp_path):
    crash = tmp_path / "crash.py"
    crash.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    spares()
    with pytest.raises(LoaderCrashError, match=r"signal 11 \(SIGSEGV\)") as info:
        check_in_child(DIGITS, custom_objects=crash)
    spares()  # for the next test, while this one ends
    assert info.value.signal == signal.SIGSEGV
    assert os.getpid() > 0  # still here: the test process is the parent


@pytest.mark.slow
def test_a_hang_is_stopped_at_the_timeout(spares, tmp_path):
    hang = tmp_path / "hang.py"
    hang.write_text("import time\ntime.sleep(600)\n")
    started = time.monotonic()
    spares()
    with pytest.raises(LoadLimitError, match="more than 2 s to load") as info:
        check_in_child(DIGITS, custom_objects=hang, limits=LoadLimits(timeout_s=2))
    spares()
    assert info.value.limit == "time"
    assert time.monotonic() - started < 60  # 2 s after TensorFlow started in the child


@pytest.mark.slow
def test_child_sees_no_secrets_and_cannot_start_processes(spares, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    monkeypatch.setenv("INSIGHT_TOKEN", "do-not-leak")
    env_out, marker = tmp_path / "env.txt", tmp_path / "ran"
    layers = tmp_path / "probe_layers.py"
    layers.write_text(PROBE_LAYER.format(env_out=str(env_out), marker=marker))
    stop_spare()  # the next child starts with the secrets in this process's environment
    spares()
    with pytest.raises(UnsafeModelError, match="tried to os.system"):
        check_in_child(probe_model(tmp_path / "probe.keras"), custom_objects=layers)
    spares()
    seen = set(env_out.read_text().split())
    assert "PATH" in seen and not {"AWS_SECRET_ACCESS_KEY", "INSIGHT_TOKEN"} & seen
    assert not marker.exists()  # blocked by the child's audit hook


@pytest.mark.slow
def test_a_good_file_passes_and_loads_here(spares, tmp_path):
    import insight

    spares()
    loaded = insight.load_model(DIGITS, isolate=LoadLimits(60, 4 * 2**30))
    assert loaded.preflight.format == "keras" and loaded.preflight.lambda_layers == []
    assert loaded.name == "digits_cnn" and loaded.model.count_params() > 0


def test_only_the_bundled_samples_skip_the_child(tmp_path):
    """The app loads the samples it ships at once; any other file goes through the child."""
    from insight.model.samples import is_bundled, sample_root

    shipped = sample_root()  # the installed package's, in CI; the checkout's, editable
    assert is_bundled(str(shipped / "digits_cnn" / "model.keras"))
    assert is_bundled(str(shipped / "sick" / "vanishing" / "model.keras"))
    (tmp_path / "model.keras").write_bytes(b"")
    assert not is_bundled(str(tmp_path / "model.keras"))
    # A path that walks out of the samples folder is not a sample.
    assert not is_bundled(str(shipped / ".." / ".." / "etc" / "passwd"))


def test_load_model_isolates_all_but_the_bundled_samples(tmp_path, monkeypatch):
    """`insight.load_model(isolate=...)` agrees with the app: the samples load at once, any
    other file (a copy of the same sample included) goes to the child."""
    import shutil

    import insight
    from insight.model import loading
    from insight.model.samples import sample_root

    def no_child(*args):
        raise AssertionError("isolated")

    monkeypatch.setattr(loading, "_load_isolated", no_child)
    loaded = insight.load_model(sample_root() / "digits_cnn" / "model.keras", isolate=True)
    assert loaded.name == "digits_cnn"
    copy = shutil.copy(sample_root() / "digits_cnn" / "model.keras", tmp_path / "m.keras")
    with pytest.raises(AssertionError, match="isolated"):
        insight.load_model(copy, isolate=True)


@pytest.mark.slow
def test_a_quiet_write_is_caught_before_the_server_loads(spares, tmp_path):
    """A payload that only writes a file, and hides the failure, is still refused."""
    marker = tmp_path / "planted.sh"
    layers = tmp_path / "quiet_layers.py"
    layers.write_text(QUIET_LAYER.format(marker=str(marker)))
    spares()
    with pytest.raises(UnsafeModelError, match="tried to write a file"):
        check_in_child(probe_model(tmp_path / "quiet.keras"), custom_objects=layers)
    spares()
    assert not marker.exists()
