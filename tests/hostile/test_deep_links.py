"""A deep link with a bad number (`min_dist=nan` for UMAP, `perplexity=-1` for t-SNE) shows a
clear error in the served app, not "Unexpected error… This is a bug" with a traceback, and the
next link in the same session works. The real app script in AppTest."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from insight.ui.serve import ENTRY

BAD_LINKS = [
    ({"panel": "projection", "method": "umap", "min_dist": "nan"},
     "'min_dist' must be a finite number"),
    ({"panel": "projection", "method": "tsne", "perplexity": "-1"},
     "'perplexity' is out of range. Give a value from 2.0 to 100.0"),
    ({"panel": "projection", "method": "umap", "n_neighbors": "1e3"},
     "'n_neighbors' must be of type int"),
    ({"panel": "training_curves", "weight": "inf"}, "'weight' must be a finite number"),
]


@pytest.fixture(autouse=True)
def _clear_caches():
    st.cache_data.clear()
    st.cache_resource.clear()


def _link(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(ENTRY), default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


@pytest.mark.slow
def test_bad_numbers_in_deep_links_are_clear_errors_and_the_app_keeps_working():
    for query, fragment in BAD_LINKS:
        at = _link(query)
        assert not at.exception, (query, [e.value for e in at.exception])
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and fragment in errors[0], (query, errors)
        assert "bug" not in errors[0].lower() and "Traceback" not in errors[0]
        assert errors[0].rstrip().endswith(f"{list(query.items())[-1][1]!r}"), errors[0]
    # the same session then takes a good link: the app kept working
    at.query_params["panel"] = "layer_table"
    for key in ("method", "weight"):
        at.query_params.pop(key, None)
    at.run()
    assert not at.exception and not at.error and len(at.dataframe) == 1


def test_a_negative_seed_is_refused_before_umap_sees_it():
    """UMAP raised a raw ValueError ("expected non-negative integer") for seed=-5."""
    from insight.errors import UsageError
    from insight.export.deeplink import parse_query

    with pytest.raises(UsageError, match="'seed' is out of range. Give a value from 0 to"):
        parse_query({"panel": "projection", "method": "umap", "seed": "-5"})
    assert parse_query({"panel": "projection", "seed": "7"}).params["seed"] == 7
