"""The scatter component's wire format: every array comes back as sent, and a colour change
of the same points sends about a byte per point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from insight.figures.projector import projection_figure
from insight.ui.scatter_component.wire import pack, unpack


def _cloud(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    coords = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n)})
    meta = pd.DataFrame({"label": rng.integers(0, 10, n), "group": rng.choice(["a", "b"], n),
                         "score": rng.random(n)})
    return coords, meta


def _same(fig, got: dict) -> None:
    """Every trace's per-point arrays and marker values, as the figure holds them."""
    assert len(fig.data) == len(got["data"])
    for trace, back in zip(fig.data, got["data"], strict=True):
        for key in ("x", "y", "z", "customdata"):
            if key in back:
                assert np.array_equal(np.asarray(trace[key]), np.asarray(back[key])), key
        for key, value in back.get("marker", {}).items():
            if not isinstance(value, dict):
                assert np.array_equal(np.asarray(trace.marker[key]), np.asarray(value)), key


@pytest.mark.parametrize("n", [300, 30_000])  # text hover data, then numbers only
def test_colour_changes_round_trip_and_send_a_byte_per_point(n):
    coords, meta = _cloud(n)
    held, browser = frozenset(), {}
    sizes = []
    for kwargs in [dict(color="label"), dict(color="group"),
                   dict(color="group", highlight=[3, 5, 8]), dict(color="score"),
                   dict(color="label", search="a")]:
        fig = projection_figure(coords, meta, **kwargs)
        message, held = pack(fig.to_plotly_json(), held=held)
        _same(fig, unpack(message, browser))
        sizes.append(len(message))
    first, to_group, ringed, to_score, _ = sizes
    assert first > 16 * n  # the points themselves: x and y as float64
    assert to_group < 1.5 * n + 4_000  # the codes: one byte per point, and the header
    assert to_score < 9 * n + 4_000  # a numeric colour: its values (float64), and the codes
    assert ringed < 4_000  # the ring's three points: their indices only


def test_other_points_and_a_lost_cache():
    coords, meta = _cloud(200)
    fig = projection_figure(coords, meta, color="label").to_plotly_json()
    message, held = pack(fig, held=frozenset())
    moved = projection_figure(coords * 2, meta, color="label").to_plotly_json()
    again, _ = pack(moved, held=held)
    assert len(again) > 16 * 200  # new coordinates travel
    with pytest.raises(KeyError, match="neither sent nor held"):
        unpack(again, {})  # the browser lost what Python thinks it holds: it must say so


def test_figures_without_point_indices_travel_whole():
    fig = {"data": [{"type": "heatmap", "z": np.arange(6.0).reshape(2, 3),
                     "text": np.array([["a", "b", "c"], ["d", "e", "f"]], dtype=object)}],
           "layout": {"title": {"text": "t"}}}
    got = unpack(pack(fig, held=frozenset())[0], {})
    assert got["data"][0]["z"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert got["data"][0]["text"].tolist() == [["a", "b", "c"], ["d", "e", "f"]]
    assert got["layout"] == {"title": {"text": "t"}}
