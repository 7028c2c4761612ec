"""The command line beyond one machine, against a real S3 endpoint (moto's server) and real
TFRecord shards: `insight serve` and `insight doctor` with streamed data (`--data` glob or
`s3://` glob with `--features`, `--data-fn`, `--max-examples`), `insight profile` with an
`s3://` logdir (captures kept local, remote runs read), remote companions checked before any
server starts, and `--cache-dir`.

`insight serve` runs for real up to the server's start; the server itself is replaced by a
recorder (a started server would block the test), and the app is then run under AppTest with
the very arguments the CLI hands it.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import requests

from insight.cli.main import build_parser, main
from insight.data.shards import write_shards
from insight.launch import app_argv, parse_app_args

from ._browser import free_port

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "sample_models" / "digits_cnn"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 6 -> 8 -> 3 classifier saved as .keras, and 300 examples in 3 TFRecord shards."""
    folder = tmp_path_factory.mktemp("stream_cli")
    keras.utils.set_random_seed(3)
    inp = keras.Input((6,), name="x")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="out")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(folder / "tiny.keras")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 6)).astype("float32"), rng.integers(0, 3, 300)
    pattern, _ = write_shards(folder / "shards", x, y, shards=3, class_names=["a", "b", "c"])
    return SimpleNamespace(model=folder / "tiny.keras", pattern=pattern,
                           spec=folder / "shards" / "features.json", folder=folder / "shards")


@pytest.fixture
def served(monkeypatch):
    """`insight serve` up to the server: the options it would serve are recorded here (with
    the cache folder the server would have) instead of a server starting."""
    calls: list = []

    def record(opts, **kwargs):
        calls.append(SimpleNamespace(opts=opts, cache=os.environ.get("INSIGHT_CACHE_DIR"),
                                     **kwargs))
        return 0

    monkeypatch.setattr("insight.ui.serve.serve", record)
    return calls


def _upload_shards(s3, tiny) -> str:
    bucket = s3.bucket()
    for f in sorted(tiny.folder.glob("shard-*.tfrecord")):
        s3.upload(f, f"s3://{bucket}/data/{f.name}")
    return f"s3://{bucket}/data/shard-*.tfrecord"


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _serve(*args: str) -> int:
    return main(["serve", *args, "--port", str(free_port())])


# ---------------------------------------------------------------- serve: streamed data
def test_serve_streams_an_s3_glob_into_the_app(s3, tiny, served, capsys):
    """The flags reach the app's arguments; the served app drawing the stream is
    tests/e2e/test_remote_app.py (a real `insight serve` with an s3:// glob in Chromium)."""
    url = _upload_shards(s3, tiny)
    assert _serve(str(tiny.model), "--data", url, "--features", str(tiny.spec),
                  "--max-examples", "120") == 0, capsys.readouterr().err
    opts = served[0].opts
    assert (opts.data, opts.features, opts.max_examples) == (url, str(tiny.spec), 120)
    app = parse_app_args(app_argv(opts), env={})  # what the served script reads back
    assert (app.data, app.features, app.max_examples) == (url, str(tiny.spec), 120)


def test_serve_takes_a_local_glob_and_a_builder(tiny, served, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny.folder.parent)
    assert _serve(str(tiny.model), "--data", "shards/shard-*.tfrecord", "--features",
                  "shards/features.json") == 0
    opts = served[-1].opts  # made absolute: the app may run from another folder
    assert opts.data == str(tiny.folder / "shard-*.tfrecord")
    assert opts.features == str(tiny.spec) and opts.max_examples is None
    builder = tmp_path / "fn.py"
    builder.write_text("import tensorflow as tf\n\ndef dataset():\n"
                       "    return tf.data.Dataset.from_tensor_slices(tf.ones((20, 6)))\n")
    assert _serve(str(tiny.model), "--data-fn", str(builder), "--max-examples", "15") == 0
    opts = served[-1].opts
    assert (opts.data, opts.data_fn, opts.max_examples) == (None, str(builder), 15)
    assert app_argv(opts)[1:] == ["--data-fn", str(builder), "--max-examples", "15"]


@pytest.mark.parametrize(("case", "words"), [
    ("no-match", "error: No TFRecord shard matches this data path."),
    ("no-spec", "error: TFRecord shards need a features spec"),
    ("both", "error: Both --data and --data-fn were given."),
    ("bad-spec", "error: "),
])
def test_serve_refuses_bad_streamed_data_in_one_line(s3, tiny, served, tmp_path, capsys,
                                                     case, words):
    url = _upload_shards(s3, tiny)
    bad = tmp_path / "bad.json"
    bad.write_text('{"features": {}}')
    args = {"no-match": ["--data", url.replace("shard-*", "other-*"), "--features",
                         str(tiny.spec)],
            "no-spec": ["--data", url],
            "both": ["--data", url, "--features", str(tiny.spec), "--data-fn", str(bad)],
            "bad-spec": ["--data", url, "--features", str(bad)]}[case]
    assert _serve(str(tiny.model), *args) == 2
    line = _error_line(capsys)
    assert line.startswith(words) and (case != "bad-spec" or "features" in line)
    assert not served, "no server starts"


def test_serve_refuses_a_local_glob_matching_nothing(tiny, served, tmp_path, capsys):
    assert _serve(str(tiny.model), "--data", str(tmp_path / "none-*.tfrecord"),
                  "--features", str(tiny.spec)) == 2
    line = _error_line(capsys)
    assert "No TFRecord shard matches" in line and "none-*.tfrecord" in line
    assert not served


# ---------------------------------------------------------------- serve: remote companions
def test_serve_checks_remote_companions_before_any_server(s3, tiny, served, capsys):
    bucket = s3.bucket()
    logs = s3.upload(DIGITS / "logs", f"s3://{bucket}/runs")
    assert _serve(str(tiny.model), "--logdir", logs) == 0
    assert served[-1].opts.logdir == logs
    served.clear()
    # a missing local logdir exits 2 in one line; a missing bucket or key now does too
    for given, words in ((str(ROOT / "no-such-logdir"), "The --logdir path does not exist"),
                         ("s3://no-such-bucket-insight/x",
                          "The bucket 'no-such-bucket-insight' does not exist"),
                         (f"s3://{bucket}/nothing", "Nothing exists at this remote path"),
                         (f"s3://{bucket}/runs?x=1", "cannot carry a query")):
        assert _serve(str(tiny.model), "--logdir", given) == 2
        assert words in _error_line(capsys)
    assert _serve(str(tiny.model), "--compare", f"s3://{bucket}/other.keras") == 2
    assert "Nothing exists" in _error_line(capsys)
    requests.post(f"{s3.endpoint}/moto-api/reset-auth", data="0", timeout=10)
    try:
        assert _serve(str(tiny.model), "--logdir", logs) == 2
    finally:
        requests.post(f"{s3.endpoint}/moto-api/reset-auth", data="inf", timeout=10)
    line = _error_line(capsys)
    assert "refused these credentials" in line and "testing" not in line
    assert not served, "no server starts"


def test_serve_with_an_unreachable_endpoint_exits_2(s3, tiny, served, monkeypatch, capsys):
    from unit._s3 import clear_fs_cache

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nobody there
    clear_fs_cache()
    assert _serve(str(tiny.model), "--logdir", "s3://some-bucket/runs") == 2
    assert "The connection to the storage failed" in _error_line(capsys)
    assert not served


# ---------------------------------------------------------------- doctor: streamed data
@pytest.mark.slow  # the model's isolated load and the doctor's checks (~15 s)
def test_doctor_streams_shards_from_s3_capped_at_its_rows(s3, tiny, tmp_path, capsys):
    url = _upload_shards(s3, tiny)
    assert main(["doctor", str(tiny.model), "--data", url, "--features", str(tiny.spec),
                 "--max-examples", "90"]) in (0, 1)
    out = capsys.readouterr().out
    assert ("data: shard-*.tfrecord (3 shards), streamed (the first 90 examples of a longer "
            "stream, all in memory)") in " ".join(out.split())  # the line is wrapped
    assert "x (6,) float32, labels" in out  # the spec's inputs and labels were read
    # a builder longer than the doctor reads: it stops at 2,048 examples
    builder = tmp_path / "fn.py"
    builder.write_text("import tensorflow as tf\n\ndef dataset():\n    return tf.data.Dataset"
                       ".from_tensor_slices((tf.ones((3000, 6)), tf.zeros(3000, tf.int64)))\n")
    assert main(["doctor", str(tiny.model), "--data-fn", str(builder)]) in (0, 1)
    text = capsys.readouterr().out
    assert "fn.py" in text and "streamed (the first 2,048 examples of a longer stream, all " \
        "in memory)" in " ".join(text.split())


@pytest.mark.parametrize("command", ["doctor", "stats"])
def test_doctor_and_stats_refuse_bad_streamed_data_before_loading(s3, tiny, capsys,
                                                                  monkeypatch, command):
    def no_load(*args, **kwargs):
        raise AssertionError("the model must not load")

    monkeypatch.setattr("insight.model.loading.load_model", no_load)
    url = _upload_shards(s3, tiny)
    for args, words in (([url.replace("shard-*", "none-*"), "--features", str(tiny.spec)],
                         "No TFRecord shard matches"),
                        ([url], "need a features spec"),
                        (["s3://no-such-bucket-insight/shard-*.tfrecord", "--features",
                          str(tiny.spec)], "The bucket 'no-such-bucket-insight'")):
        assert main([command, str(tiny.model), "--data", *args]) == 2
        assert words in _error_line(capsys)


# ---------------------------------------------------------------- profile: remote logdirs
def _profile(*args: str) -> int:
    return main(["profile", *args])


def test_profile_reads_the_newest_remote_run_as_the_local_one(s3, capsys):
    from insight.profiler.fetched import list_remote_profiles

    url = s3.upload(DIGITS / "logs", f"s3://{s3.bucket()}/digits/logs")
    assert _profile("--logdir", url) == 0
    remote = capsys.readouterr().out.splitlines()
    assert _profile("--logdir", str(DIGITS / "logs")) == 0
    local = capsys.readouterr().out.splitlines()
    (host,) = list_remote_profiles(url)[0].hosts
    assert remote[0] == f"profile: {host}"  # named by its URL, not by the cache's copy
    assert remote[1].startswith("steps: ") and remote[1:-1] == local[1:-1]
    assert str(Path(os.environ["INSIGHT_CACHE_DIR"])) in remote[-1]  # xprof reads the copy
    fetched = [p for p in (Path(os.environ["INSIGHT_CACHE_DIR"]) / "remote").rglob("*")
               if p.is_file() and "index" not in p.parts]
    assert fetched and all(p.name.endswith(".xplane.pb") for p in fetched)  # no event file
    assert _profile("--logdir", url, "--run", "nope") == 2
    assert "No profile run 'nope'" in _error_line(capsys)


def test_profile_storage_errors_exit_2_in_one_line(s3, capsys):
    bucket = s3.bucket()
    cases = (("s3://no-such-bucket-insight/logs", "The bucket 'no-such-bucket-insight'"),
             (f"s3://{bucket}/logs", "No profile under s3://"),
             (f"s3://{bucket}/logs?versionId=1", "cannot carry a query"))
    for url, words in cases:
        assert _profile("--logdir", url) == 2
        assert words in _error_line(capsys)
    s3.put(f"s3://{bucket}/logs/plugins/profile/r1/h.xplane.pb", b"x")
    requests.post(f"{s3.endpoint}/moto-api/reset-auth", data="0", timeout=10)
    try:
        assert _profile("--logdir", f"s3://{bucket}/logs") == 2
    finally:
        requests.post(f"{s3.endpoint}/moto-api/reset-auth", data="inf", timeout=10)
    line = _error_line(capsys)
    assert "refused these credentials" in line and "testing" not in line


@pytest.mark.slow  # the model's isolated load, then a profiled run (~15 s)
def test_profile_capture_with_a_remote_logdir_stays_local(s3, tiny, capsys, monkeypatch):
    from insight.profiler.capture import capture_name
    from insight.ui.profiler import capture_dir

    monkeypatch.delenv("TF_CPU_ALLOCATOR_USE_BFC", raising=False)  # the command sets it
    bucket = s3.bucket()
    url = f"s3://{bucket}/runs/logs"
    assert _profile(str(tiny.model), "--logdir", url, "--steps", "2", "--warmup", "1") == 0
    out = capsys.readouterr().out
    where = Path(os.environ["INSIGHT_CACHE_DIR"]) / "profiles" / "tiny" / "plugins" / "profile"
    assert f"{url} is unchanged; the profile was written to {where}/" in out, out
    (run,) = list(where.iterdir())
    assert list(run.glob("*.xplane.pb")) and "steps: 2, mean" in out
    assert s3.client.list_objects_v2(Bucket=bucket)["KeyCount"] == 0  # the bucket untouched
    # the folder the app's Capture button writes, and its Profiler lists for this model
    assert capture_name(str(tiny.model)) == "tiny"
    for path in (str(tiny.model), f"{ROOT}/sample_models/digits_cnn/model.keras"):
        assert capture_dir(SimpleNamespace(path=path), None).name == capture_name(path)


# ---------------------------------------------------------------- --cache-dir
def _blobs(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "remote" / "blobs").rglob("*") if p.is_file())


def test_cache_dir_holds_what_summary_and_serve_fetch(s3, tiny, served, tmp_path, capsys):
    url = s3.upload(tiny.model, f"s3://{s3.bucket()}/m/tiny.keras")
    default = Path(os.environ["INSIGHT_CACHE_DIR"])
    assert main(["summary", url, "--cache-dir", str(tmp_path / "a")]) == 0
    assert f"file: {url}" in capsys.readouterr().out
    assert _blobs(tmp_path / "a") == ["tiny.keras"] and not (default / "remote").exists()
    # serve: the fetch and the served app (same process, and its children) use the folder
    assert _serve(url, "--cache-dir", str(tmp_path / "b" / "new")) == 0
    assert served[0].cache == str(tmp_path / "b" / "new")
    assert _blobs(tmp_path / "b" / "new") == ["tiny.keras"]
    (tmp_path / "file").write_text("")
    assert _serve(url, "--cache-dir", str(tmp_path / "file" / "x")) == 2
    line = _error_line(capsys)
    assert "The cache folder cannot be created" in line and "--cache-dir" in line
    assert len(served) == 1


@pytest.mark.parametrize("command", [["serve"], ["summary", "m"], ["doctor", "m"],
                                     ["compare", "a", "b"], ["stats", "m"],
                                     ["profile", "--logdir", "d"], ["xla", "m"],
                                     ["export", "m", "--all-panels", "--out", "o"]])
def test_every_command_that_fetches_takes_cache_dir(command):
    assert build_parser().parse_args([*command, "--cache-dir", "c"]).cache_dir == "c"


def test_export_reads_a_remote_model_and_checks_a_remote_logdir(s3, tiny, tmp_path, capsys):
    """`insight export` takes an s3:// model and logdir as the other commands do: the model
    fetched and exported, a missing bucket one error line before any load."""
    bucket = s3.bucket()
    url = s3.upload(tiny.model, f"s3://{bucket}/m/tiny.keras")
    out = tmp_path / "layers.html"
    assert main(["export", url, "--panel", "layer_table", "--out", str(out)]) == 0
    assert "hidden" in out.read_text() and "softmax" in out.read_text()
    capsys.readouterr()
    assert main(["export", url, "--panel", "layer_table", "--logdir",
                 "s3://no-such-bucket-insight/runs", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: The bucket 'no-such-bucket-insight'")
