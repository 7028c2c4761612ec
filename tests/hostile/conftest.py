"""The hostile corpora, built once per session into a temporary folder."""

from __future__ import annotations

import pytest

from hostile.models import build_model_corpus, marker_dir


@pytest.fixture(scope="session")
def model_corpus(tmp_path_factory):
    """`(cases, markers)`: every hostile model file, and the folder their payloads write to.

    At the end of the session the marker folder must still be empty: no payload ran.
    """
    root = tmp_path_factory.mktemp("hostile_models")
    cases = build_model_corpus(root)
    markers = marker_dir(root)
    yield cases, markers
    ran = sorted(p.name for p in markers.iterdir())
    assert ran == [], f"payloads ran: {ran}"
