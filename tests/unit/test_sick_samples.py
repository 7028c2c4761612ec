"""The doctor's sick samples (`sample_models/sick/`): each loads, has its data and logs, gets
the finding it was built to show, and its fixed twin gets no warning."""

from __future__ import annotations

import json

import numpy as np
import pytest

from insight import load_model
from insight.data import load_dataset
from insight.model.samples import list_samples

# sick sample -> the doctor's category it was trained to show (`<name>_fixed` is its twin)
SICK = {
    "vanishing": "vanishing_gradient",
    "dead_relu": "dead_units",
    "diverging": "learning_rate_high",
    "softmax_bce": "loss_activation_mismatch",
    "raw_pixels": "unnormalized_input",
}
FOLDERS = sorted([*SICK, *(f"{name}_fixed" for name in SICK)])
PROBLEMS = ("warning", "error")


@pytest.fixture(scope="module")
def sick_dir(samples_dir):
    return samples_dir / "sick"


def test_every_sick_folder_is_known(sick_dir):
    found = sorted(p.name for p in sick_dir.iterdir() if p.is_dir())
    assert found == FOLDERS
    readme = (sick_dir / "README.md").read_text(encoding="utf-8")
    for name, category in SICK.items():
        assert f"| `{name}/` | `{name}_fixed/` | `{category}` |" in readme


def test_sick_samples_stay_out_of_the_sidebar(sick_dir):
    listed = {s.model.resolve() for s in list_samples()}
    assert not any(p.resolve() in listed for p in sick_dir.glob("*/model.keras"))


@pytest.mark.parametrize("name", FOLDERS)
def test_sick_sample_loads_with_its_data_and_logs(sick_dir, name):
    folder = sick_dir / name
    lines = (folder / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and lines[0].startswith("Sick: " if name in SICK else "Fixed twin")

    loaded = load_model(folder / "model.keras")  # safe mode is the default
    assert loaded.safe_mode and loaded.model.count_params() > 0

    data = load_dataset(folder / "data.npz")
    assert len(data) == 1797 and data.class_names == [str(i) for i in range(10)]
    assert data.y is not None and len(data.y) == 1797
    pixels = np.asarray(data.x)
    assert pixels.shape == (1797, 8, 8, 1) and pixels.min() == 0
    assert pixels.max() == (255 if name == "raw_pixels" else 1)

    for run in ("train", "validation"):
        assert list((folder / "logs" / run).glob("events.out.tfevents.*")), run
    history = json.loads((folder / "history.json").read_text())
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(history)
    assert (folder / "history.csv").read_text().startswith("epoch,")
    losses = np.array(history["loss"])
    assert np.isnan(losses).any() == (name == "diverging"), losses


# -- the doctor: fails (never skips) while insight.doctor is missing -----------------------------

def _diagnose(folder):
    try:
        from insight.doctor import diagnose
    except ImportError as error:
        pytest.fail(f"insight.doctor not available yet: {error}")
    loaded = load_model(folder / "model.keras")
    return diagnose(loaded, data=folder / "data.npz", logdir=folder / "logs")


def _shown(findings) -> str:
    return "\n".join(f"  {f.severity} {f.category} ({f.check}, layer {f.layer}): "
                     f"{f.explanation}" for f in findings) or "  (no findings)"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SICK))
def test_doctor_finds_the_intended_cause(sick_dir, name):
    findings = _diagnose(sick_dir / name).findings
    hits = [f for f in findings if f.category == SICK[name] and f.severity in PROBLEMS]
    assert hits, f"{name}: no warning/error of category {SICK[name]}; got\n{_shown(findings)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SICK))
def test_doctor_finds_nothing_wrong_with_the_fixed_twin(sick_dir, name):
    findings = _diagnose(sick_dir / f"{name}_fixed").findings
    problems = [f for f in findings if f.severity in PROBLEMS]
    assert not problems, f"{name}_fixed: expected no warning/error; got\n{_shown(problems)}"
