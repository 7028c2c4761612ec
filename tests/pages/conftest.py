"""AppTest fixtures: the real app script, caches cleared between tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("INSIGHT_MODEL", "INSIGHT_DATA", "INSIGHT_LOGDIR", "INSIGHT_UNSAFE",
                "INSIGHT_CUSTOM_OBJECTS", "INSIGHT_LOCKED"):
        monkeypatch.delenv(var, raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


@pytest.fixture(scope="session")
def lambda_keras(tmp_path_factory) -> Path:
    """A tiny functional model with a Lambda layer, saved as .keras."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((4,), name="x")
    doubled = keras.layers.Lambda(lambda t: t * 2, name="double")(inp)
    out = keras.layers.Dense(2, name="out")(doubled)
    path = tmp_path_factory.mktemp("pages") / "lambda_model.keras"
    keras.Model(inp, out, name="with_lambda").save(path)
    return path
