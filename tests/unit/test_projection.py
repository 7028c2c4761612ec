"""Projections (PCA, UMAP, t-SNE, precomputed) and exact nearest neighbours."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.manifold import trustworthiness

import insight
from insight.errors import DataError, UsageError
from insight.projector.projection import neighbors, project


@pytest.fixture(scope="module")
def blobs():
    x, y = make_blobs(n_samples=300, n_features=12, centers=4, cluster_std=1.0, random_state=0)
    return x.astype(np.float32), y


@pytest.mark.parametrize("method,threshold", [("pca", 0.85), ("tsne", 0.9), ("umap", 0.9)])
def test_projection_keeps_neighbourhoods_and_is_deterministic(blobs, method, threshold):
    x, _ = blobs
    first = project(x, method=method, dims=2, seed=0)
    again = project(x, method=method, dims=2, seed=0)
    assert list(first.columns) == ["x", "y"] and len(first) == len(x)
    np.testing.assert_allclose(first.to_numpy(), again.to_numpy(), rtol=0, atol=1e-5)
    assert trustworthiness(x, first.to_numpy(), n_neighbors=10) > threshold


def test_three_dimensions_and_explained_variance(blobs):
    x, _ = blobs
    frame = project(x, method="pca", dims=3)
    assert list(frame.columns) == ["x", "y", "z"]
    ratios = frame.attrs["explained_variance"]
    assert len(ratios) == 3 and ratios == sorted(ratios, reverse=True) and sum(ratios) <= 1
    tsne3 = project(x[:120], method="tsne", dims=3)
    assert tsne3.shape == (120, 3)


def test_pca_matches_scikit_learn(blobs):
    from sklearn.decomposition import PCA

    x, _ = blobs
    frame = project(x, "pca", dims=2)
    ours = frame.to_numpy()
    pca = PCA(n_components=2).fit(x)
    ref = pca.transform(x)
    # The share of the total variance each axis explains (the axis titles say it).
    np.testing.assert_allclose(frame.attrs["explained_variance"],
                               pca.explained_variance_ratio_, rtol=1e-4)
    for k in range(2):  # equal up to the sign of each component
        same, flipped = np.abs(ours[:, k] - ref[:, k]), np.abs(ours[:, k] + ref[:, k])
        assert min(same.max(), flipped.max()) < 1e-3


def test_precomputed_coordinates(blobs):
    x, _ = blobs
    coords = np.arange(len(x) * 2, dtype=np.float32).reshape(-1, 2)
    frame = project(x, "precomputed", coords=coords)
    np.testing.assert_array_equal(frame.to_numpy(), coords)
    with pytest.raises(DataError, match="one row per point"):
        project(x, "precomputed", coords=coords[:-1])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_neighbours_match_brute_force(metric):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 16)).astype(np.float32)
    got = neighbors(x, 7, k=10, metric=metric)
    if metric == "cosine":
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        dist = 1 - unit @ unit[7]
    else:
        dist = np.linalg.norm(x - x[7], axis=1)
    dist[7] = np.inf
    expected = np.argsort(dist, kind="stable")[:10]
    assert got["index"].tolist() == expected.tolist()
    np.testing.assert_allclose(got["distance"], dist[expected], rtol=1e-4, atol=1e-5)
    assert 7 not in got["index"].tolist()


@pytest.mark.parametrize("bad,fragment", [
    (np.zeros((1, 4)), "at least 2 points"),
    (np.zeros((10, 1)), "at least 2 points of at least 2 dimensions"),
    (np.zeros(10), "2-D array"),
    (np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]]), "NaN/Inf"),
])
def test_bad_vectors(bad, fragment):
    with pytest.raises(DataError, match=fragment) as err:
        project(bad)
    assert "Received:" in str(err.value)


def test_bad_arguments(blobs):
    x, _ = blobs
    with pytest.raises(UsageError, match="Methods are: pca, umap, tsne, precomputed"):
        project(x, method="lda")
    with pytest.raises(UsageError, match="2-D or 3-D"):
        project(x, dims=4)
    with pytest.raises(UsageError, match="Metrics are"):
        neighbors(x, 0, metric="manhattan")
    with pytest.raises(UsageError, match="out of range"):
        neighbors(x, len(x))


def test_public_names():
    assert insight.project is project and insight.neighbors is neighbors


@pytest.mark.parametrize("method", ["umap", "tsne"])
def test_progress_reports_rise_to_done(blobs, method):
    calls: list[tuple[float, str]] = []
    project(blobs[0], method, progress=lambda f, msg: calls.append((f, msg)))
    fractions = [f for f, _ in calls]
    assert len(calls) >= 3 and fractions == sorted(fractions)
    assert fractions[-1] == 1.0 and 0.0 <= fractions[0] < 0.5
    assert all(msg.startswith("UMAP" if method == "umap" else "t-SNE") for _, msg in calls)


def test_large_projections_carry_numeric_hover_data_only():
    import pandas as pd

    from insight.figures.projector import HOVER_TEXT_ROWS, projection_figure

    n = HOVER_TEXT_ROWS + 1
    rng = np.random.default_rng(0)
    coords = pd.DataFrame(rng.normal(size=(n, 2)).astype(np.float32), columns=["x", "y"])
    meta = pd.DataFrame({"group": np.where(np.arange(n) % 2, "odd", "even"),
                         "score": rng.random(n)})
    fig = projection_figure(coords, meta, color="group")
    trace = fig.data[0]
    assert trace.customdata.dtype == np.float32 and trace.customdata.shape[1] == 2
    assert "score: %{customdata[1]" in trace.hovertemplate
    assert "group: %{fullData.name}" in trace.hovertemplate
    assert sum(len(t.x) for t in fig.data) == n  # still every point
    small = projection_figure(coords[:100], meta[:100], color="group")
    assert "group: %{customdata[1]}" in small.data[0].hovertemplate  # text below the limit


def test_projection_axes_say_what_they_are(blobs):
    import pandas as pd

    from insight.figures.projector import projection_figure

    x, labels = blobs
    meta = pd.DataFrame({"label": labels})
    frame = project(x, "pca", dims=2)
    ratios = frame.attrs["explained_variance"]
    layout = projection_figure(frame, meta, color="label").to_dict()["layout"]
    assert layout["xaxis"]["title"]["text"] == f"PC1 ({ratios[0]:.1%} of variance)"
    assert layout["yaxis"]["title"]["text"] == f"PC2 ({ratios[1]:.1%} of variance)"
    assert layout["xaxis"]["showticklabels"]  # PCA coordinates mean something
    umap_like = frame.copy()
    umap_like.attrs = {"method": "umap"}
    layout = projection_figure(umap_like, meta).to_dict()["layout"]
    assert layout["xaxis"]["title"]["text"] == "UMAP 1"
    assert not layout["xaxis"]["showticklabels"]  # UMAP's coordinates do not
    three = project(x, "pca", dims=3)
    scene = projection_figure(three, meta).to_dict()["layout"]["scene"]
    assert scene["zaxis"]["title"]["text"].startswith("PC3 (")


def test_many_categories_fold_into_other_and_every_point_is_drawn_once():
    """The `MAX_CATEGORIES` most frequent values get a trace each, in natural order; the rest
    and missing values share "other"; a value that is itself "other" gets no second trace."""
    import pandas as pd

    from insight.figures.projector import MAX_CATEGORIES, projection_figure

    n = 2_000
    rng = np.random.default_rng(0)
    coords = pd.DataFrame(rng.normal(size=(n, 2)).astype(np.float32), columns=["x", "y"])
    words = np.array([f"w{i}" for i in range(40)] + ["other"])
    column = pd.Series(words[np.minimum(rng.geometric(0.08, n - 200), 40)], dtype="string")
    column[::97] = None  # missing values: drawn with the rare ones, not dropped
    # A frequent value seen last: missing values must not fall into the last value's trace.
    column = pd.concat([column, pd.Series(["zz"] * 200, dtype="string")], ignore_index=True)
    fig = projection_figure(coords, pd.DataFrame({"word": column}), color="word")
    names = [t.name for t in fig.data]
    counts = column.value_counts()
    kept = list(counts.index[:MAX_CATEGORIES])
    assert "other" in kept and len(counts) > MAX_CATEGORIES  # the case this test is about
    assert names == sorted(kept)  # natural order (no numbers here); one "other"
    assert len(set(names)) == len(names)
    index = np.concatenate([t.customdata[:, 0] for t in fig.data]).astype(int)
    assert sorted(index.tolist()) == list(range(n))  # every point, once
    for trace in fig.data:  # each trace holds exactly its value's points, in order
        rows = trace.customdata[:, 0].astype(int)
        assert (np.diff(rows) > 0).all()
        np.testing.assert_array_equal(trace.x, coords["x"].to_numpy()[rows])
        values = column[rows]
        if trace.name != "other":
            assert (values == trace.name).all()
        else:
            assert (values.isna() | ~values.isin(set(names) - {"other"})).all()
            assert values.isna().any() and (values == "other").any()
