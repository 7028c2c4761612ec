"""Remote model files, checkpoint folders, profiles and projector logdirs against a real S3
server (moto's, on loopback): fetched into insight's cache and then read exactly as local
files (preflight, sandbox, safe mode); every storage failure one clear `StorageError` that
never echoes credentials and leaves nothing half-written in the cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests

from insight.errors import DataError, StorageError, UnsafeModelError, UnsupportedModelError
from insight.model.fetched import fetch_model, fetched_from
from insight.model.loading import load_model
from insight.remote import cache_root

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "sample_models" / "digits_cnn"
SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETKEY"
KEY_ID = "AKIAIOSFODNN7SECRETID"


def _cached_files() -> list[Path]:
    """Every file the remote cache holds (blobs, trees and temporaries)."""
    root = cache_root()
    return [p for p in root.rglob("*") if p.is_file() and "index" not in p.parts] \
        if root.exists() else []


@pytest.fixture
def auth_on(s3):
    """moto refuses every request from now on (auth enforced; the test keys are not IAM's)."""
    requests.post(f"{s3.endpoint}/moto-api/reset-auth", data="0", timeout=10)
    yield
    requests.post(f"{s3.endpoint}/moto-api/reset-auth", data="inf", timeout=10)


@pytest.fixture
def drop(s3, monkeypatch):
    """The S3 endpoint behind a proxy that drops connections mid-download once armed."""
    from unit._drop import DropProxy
    from unit._s3 import clear_fs_cache

    proxy = DropProxy(s3.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    clear_fs_cache()
    yield proxy
    proxy.close()


def test_remote_model_is_loaded_from_its_local_copy(s3, model_files, monkeypatch):
    import keras

    from insight.model import keras_phases

    seen: list[str] = []
    for owner, name in ((keras.saving, "load_model"), (keras_phases, "build"),
                        (keras_phases, "load_weights")):
        real = getattr(owner, name)

        def spy(*args, _real=real, **kwargs):
            seen.append(str(next(a for a in args if isinstance(a, (str, Path)))))
            return _real(*args, **kwargs)

        monkeypatch.setattr(owner, name, spy)
    bucket = s3.bucket()
    for local in (model_files.tiny_keras, model_files.tiny_h5):
        url = s3.upload(local, f"s3://{bucket}/models/{local.name}")
        loaded = load_model(url)
        assert loaded.source == url and loaded.preflight.source == url
        assert loaded.path.is_relative_to(cache_root()) and loaded.path.name == local.name
        assert loaded.model.name == "tiny" and f"source={url!r}" in repr(loaded)
    assert seen, "Keras was never called"
    for arg in seen:  # Keras only ever saw files under the cache, never a URL
        assert "://" not in arg and Path(arg).resolve().is_relative_to(cache_root().resolve())


def test_the_sandbox_child_gets_the_local_copy(s3, model_files, monkeypatch):
    from insight.model import sandbox

    asked: list[str] = []
    real = sandbox.start_check

    def spy(path, **kwargs):
        asked.append(str(path))
        return real(path, **kwargs)

    monkeypatch.setattr(sandbox, "start_check", spy)
    url = s3.upload(model_files.tiny_keras, f"s3://{s3.bucket()}/m/tiny.keras")
    loaded = load_model(url, isolate=True)
    assert loaded.source == url
    assert asked == [str(fetch_model(url))] and "://" not in asked[0]


def test_remote_lambda_is_refused_exactly_as_a_local_one(s3, model_files):
    with pytest.raises(UnsafeModelError) as local:
        load_model(model_files.lambda_keras)
    url = s3.upload(model_files.lambda_keras, f"s3://{s3.bucket()}/m/lambda.keras")
    with pytest.raises(UnsafeModelError) as remote:
        load_model(url)
    assert (remote.value.what, remote.value.fix, remote.value.names) == \
        (local.value.what, local.value.fix, local.value.names)
    assert remote.value.received == f"path={url!r}"  # the URL, not the cache's path
    assert str(cache_root()) not in str(remote.value)
    loaded = load_model(url, safe_mode=False)  # --unsafe: the same opt-out as a local file
    assert loaded.model.name == "lam" and not loaded.safe_mode


def test_other_schemes_and_the_bare_preflight_refuse_urls(s3):
    from insight.model.preflight import preflight

    for url in ("hf://user/model", "https://example.com/model.keras"):
        with pytest.raises(UnsupportedModelError, match="s3:// or gs:// URLs only"):
            load_model(url)
    # the static reader (and the sandbox child running it) never fetches by itself
    with pytest.raises(UnsupportedModelError, match="local files only"):
        preflight("s3://bucket/model.keras")


def test_a_folder_without_a_model_is_refused_before_any_download(s3, tmp_path):
    bucket = s3.bucket()
    s3.upload(DIGITS / "logs", f"s3://{bucket}/run/logs")
    with pytest.raises(UnsupportedModelError, match="holds no model at its top level") as err:
        load_model(f"s3://{bucket}/run/logs")
    assert "train" in str(err.value) and not _cached_files()


def test_a_remote_folder_holding_one_model(s3, model_files, tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    shutil.copy(model_files.tiny_keras, folder / "model.keras")
    url = s3.upload(folder, f"s3://{s3.bucket()}/exports/tiny")
    loaded = load_model(url)
    assert loaded.model.name == "tiny" and loaded.source == url
    assert fetched_from(loaded.path) == url


@pytest.mark.parametrize("case", ["missing", "denied", "connection"])
def test_storage_failures_are_clear_never_echo_credentials_and_keep_nothing_half_written(
        case, s3, model_files, monkeypatch, request):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    big = model_files.root / "big.keras"
    if not big.exists():  # padded past the proxy's cut so a download starts, then drops
        import zipfile

        shutil.copy(model_files.tiny_keras, big)
        with zipfile.ZipFile(big, "a") as z:
            z.writestr("assets/padding.bin", os.urandom(2 * 2**20))
    bucket = s3.bucket()
    url = s3.upload(big, f"s3://{bucket}/m/big.keras")
    if case == "missing":
        url = "s3://no-such-bucket-insight/m/big.keras"
    elif case == "denied":
        request.getfixturevalue("auth_on")
    else:
        proxy = request.getfixturevalue("drop")
        proxy.armed = True
    with pytest.raises(StorageError) as err:
        load_model(url, isolate=True)
    if case == "connection":
        assert proxy.dropped  # the download started and was cut
    text = str(err.value)
    assert err.value.reason == case and "Received:" in text and url in text
    assert SECRET not in text and KEY_ID not in text
    assert not _cached_files()  # no half-written blob, no temporary left behind


def test_cli_exit_codes_and_names_against_the_server(s3, model_files):
    bucket = s3.bucket()
    url = s3.upload(model_files.tiny_keras, f"s3://{bucket}/m/tiny.keras")
    env = {**os.environ, **s3.env, "INSIGHT_CACHE_DIR": os.environ["INSIGHT_CACHE_DIR"]}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "insight", *args], capture_output=True,
                              text=True, env=env, timeout=300, cwd=ROOT)

    ok = cli("summary", url)
    assert ok.returncode == 0, ok.stderr
    assert f"file: {url}" in ok.stdout and "d1" in ok.stdout
    missing = cli("summary", f"s3://{bucket}/m/nothing.keras")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith("error: Nothing exists")
    lam = s3.upload(model_files.lambda_keras, f"s3://{bucket}/m/lambda.keras")
    refused = cli("summary", lam)
    assert refused.returncode == 2 and "Lambda" in refused.stderr and lam in refused.stderr
    # serve fails fast, before any server starts
    gone = cli("serve", "s3://no-such-bucket-insight/m.keras", "--port", "1")
    assert gone.returncode == 2 and "error: The bucket 'no-such-bucket-insight'" in gone.stderr
    requests.post(f"{s3.endpoint}/moto-api/reset-auth", data="0", timeout=10)
    try:
        denied = cli("doctor", f"s3://{bucket}/m/other.keras")
    finally:
        requests.post(f"{s3.endpoint}/moto-api/reset-auth", data="inf", timeout=10)
    assert denied.returncode == 2 and "error: The storage refused these credentials" in \
        denied.stderr and "testing" not in denied.stderr
    from unit._drop import DropProxy

    big = model_files.root / "wide.keras"
    import keras

    keras.Sequential([keras.Input((512,)), keras.layers.Dense(1024)]).save(big)
    s3.upload(big, f"s3://{bucket}/m/wide.keras")
    proxy = DropProxy(s3.endpoint)
    proxy.armed = True
    try:
        env["AWS_ENDPOINT_URL"] = proxy.endpoint
        dropped = cli("compare", f"s3://{bucket}/m/wide.keras", url)
    finally:
        proxy.close()
    assert dropped.returncode == 2 and "error: The connection to the storage failed or " \
        "dropped" in dropped.stderr and proxy.dropped


def test_remote_checkpoint_folder_with_its_model_above(s3):
    from insight.compare.checkpoints import find_checkpoints

    bucket = s3.bucket()
    s3.upload(DIGITS / "model.keras", f"s3://{bucket}/digits/model.keras")
    url = s3.upload(DIGITS / "checkpoints", f"s3://{bucket}/digits/checkpoints")
    remote = find_checkpoints(url)
    local = find_checkpoints(DIGITS / "checkpoints")
    assert remote.epochs == local.epochs and remote.layers == local.layers
    assert remote.model_file is not None and fetched_from(remote.model_file) == \
        f"s3://{bucket}/digits/model.keras"
    # what the app's sidebar hands the Checkpoints page: a local folder, read as one
    copy = fetch_model(url)
    assert fetched_from(copy) == url and find_checkpoints(copy).model_file is not None
    with pytest.raises(DataError) as err:  # one checkpoint: the error names the URL
        find_checkpoints(s3.upload(DIGITS / "checkpoints" / "epoch_01.weights.h5",
                                   f"s3://{bucket}/one/epoch_01.weights.h5").rsplit("/", 1)[0])
    assert f"s3://{bucket}/one" in str(err.value) and str(cache_root()) not in str(err.value)


def test_remote_profiles_are_listed_then_fetched_alone(s3):
    from insight.profiler.capture import find_profiles, get_profile
    from insight.profiler.fetched import fetch_profile, list_remote_profiles

    url = s3.upload(DIGITS / "logs", f"s3://{s3.bucket()}/digits/logs")
    local = find_profiles(DIGITS / "logs")
    runs = list_remote_profiles(url)
    assert [r.label for r in runs] == [r.label for r in local]
    assert not _cached_files()  # listing downloads nothing
    view = fetch_profile(url, runs[0])
    run = get_profile(view, runs[0].label)
    assert run.hosts[0].read_bytes() == local[0].hosts[0].read_bytes()
    fetched = _cached_files()  # the .xplane.pb only: no event file of the logdir
    assert fetched and all(p.name.endswith(".xplane.pb") for p in fetched)
    assert fetch_profile(url, runs[0].label) == view  # a second open: the same local copy
    # inside the layout, the run keeps its label (as find_profiles names local ones)
    inner = list_remote_profiles(f"{url}/train/plugins/profile")
    assert [r.label for r in inner] == [r.folder.name for r in local]
    assert [r.label for r in find_profiles(url)] == [r.label for r in local]


def _projector_logdir(folder: Path, tensor_path: str = "vectors.tsv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.savetxt(folder / "vectors.tsv", rng.normal(size=(12, 4)), delimiter="\t")
    (folder / "metadata.tsv").write_text("\n".join(f"w{i}" for i in range(12)) + "\n")
    (folder / "events.out.tfevents.1.host").write_bytes(b"not fetched")
    (folder / "projector_config.pbtxt").write_text(
        f'embeddings {{ tensor_name: "words" tensor_path: "{tensor_path}" '
        'metadata_path: "metadata.tsv" }\n')
    return folder


def test_remote_projector_logdir_fetches_only_what_its_config_names(s3, tmp_path):
    from insight.projector.sources import fetch_projector, projector_vectors

    folder = _projector_logdir(tmp_path / "proj")
    bucket = s3.bucket()
    url = s3.upload(folder, f"s3://{bucket}/runs/proj")
    [remote], [local] = projector_vectors(url), projector_vectors(folder)
    assert remote.name == "words" and np.array_equal(remote.vectors, local.vectors)
    assert list(remote.metadata["label"]) == list(local.metadata["label"])
    assert sorted(p.name for p in _cached_files() if "blobs" in p.parts) == \
        ["metadata.tsv", "projector_config.pbtxt", "vectors.tsv"]
    assert fetch_projector(f"s3://{bucket}/runs") is None  # no config: not a projector logdir
    bad = s3.upload(_projector_logdir(tmp_path / "bad", "../proj/vectors.tsv"),
                    f"s3://{bucket}/runs/bad")
    with pytest.raises(DataError, match="outside its logdir"):
        projector_vectors(bad)
    with pytest.raises(StorageError) as err:
        fetch_projector("s3://no-such-bucket-insight/runs")
    assert err.value.reason == "missing"


def test_a_remote_savedmodel_is_fetched_whole_and_refused_in_safe_mode(s3, model_files,
                                                                       tmp_path):
    export = tmp_path / "saved"
    model_files.tiny_model.export(export, verbose=False)
    url = s3.upload(export, f"s3://{s3.bucket()}/exports/saved")
    with pytest.raises(UnsafeModelError, match="TF SavedModel") as err:
        load_model(url)
    assert f"path={url!r}" in str(err.value)
    loaded = load_model(url, safe_mode=False)  # --unsafe: inference through TFSMLayer
    assert loaded.format == "savedmodel" and loaded.source == url
    assert (loaded.path / "variables").is_dir()  # the nested folders came along
