"""The `insight` command line, run as `python -m insight.cli` (few runs: each is a process)."""

from __future__ import annotations

import json
import time

import pytest

from insight import __version__
from insight.cli.main import build_parser, main


def _one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_summary_json(run_python, sample_path):
    proc = run_python("-m", "insight.cli", "summary", str(sample_path("digits_cnn")), "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert sorted(summary) == ["card", "layers", "preflight"]
    card = summary["card"]
    assert card["name"] == "digits_cnn"
    assert card["total_params"] == sum(layer["params"] for layer in summary["layers"]) > 0
    assert card["layer_count"] == len(summary["layers"])
    assert summary["preflight"]["format"] == "keras"


def test_summary_bad_file_one_line(run_python, model_files):
    proc = run_python("-m", "insight.cli", "summary", str(model_files.random_keras),
                      timeout=60)
    assert proc.returncode == 2
    line = _one_error_line(proc)
    assert "not a .keras file" in line and "Received:" in line
    assert proc.stdout == ""


def test_summary_debug_shows_traceback(run_python, model_files):
    proc = run_python("-m", "insight.cli", "summary", str(model_files.random_keras), "--debug",
                      timeout=60)
    assert proc.returncode not in (0, 2)
    assert "Traceback" in proc.stderr
    assert "ModelLoadError" in proc.stderr


@pytest.mark.parametrize("module", ["insight.cli", "insight"])
def test_version(run_python, module):
    proc = run_python("-m", module, "--version", timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"insight {__version__}"


def test_serve_lambda_without_unsafe_fails_fast(run_python, model_files):
    start = time.monotonic()
    proc = run_python("-m", "insight.cli", "serve", str(model_files.lambda_keras),
                      "--port", "1", timeout=60)
    elapsed = time.monotonic() - start
    assert proc.returncode == 2
    line = _one_error_line(proc)
    assert "Lambda" in line and "double" in line and "--unsafe" in line
    assert "serving" not in proc.stdout, "the server must not start"
    assert elapsed < 30


def test_serve_missing_data_path(run_python):
    proc = run_python("-m", "insight.cli", "serve", "--data", "/nonexistent", timeout=60)
    assert proc.returncode == 2
    line = _one_error_line(proc)
    assert "--data" in line and "/nonexistent" in line
    assert "serving" not in proc.stdout


# In-process: cheap, TensorFlow is already loaded by other tests.


def test_main_text_summary(capsys, sample_path):
    assert main(["summary", str(sample_path("multi_io"))]) == 0
    out = capsys.readouterr().out
    assert out.startswith("multi_io  [.keras (Keras v3), Functional (functional)")
    assert "params: 4,859 total" in out
    assert "merge" in out and "Concatenate" in out


def test_main_error_returns_2(capsys, model_files):
    assert main(["summary", str(model_files.lambda_h5)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert main(["summary", str(model_files.lambda_h5), "--unsafe"]) == 0


def test_main_without_command_prints_help(capsys):
    assert main([]) == 2
    assert "summary" in capsys.readouterr().out


def test_parser_defaults():
    args = build_parser().parse_args(["serve"])
    assert (args.model, args.host, args.port, args.unsafe) == (None, "127.0.0.1", 8501, False)
