"""Every chart the app draws is a registered panel, every panel has a working Share control,
and deep links render one panel (or say clearly what is wrong). Real app scripts in AppTest.

`insight.panels.build_panel` tags each figure it builds with `layout.meta.insight_panel`; a
chart a page draws any other way has no tag, so `unregistered_charts` finds it.
"""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from insight.model.samples import get_sample
from insight.panels import panel_names
from insight.ui.cache import ModelRef
from insight.ui.serve import ENTRY as SERVE_ENTRY
from insight.ui.shell import PAGE_DIR, PAGES

ENTRY = SERVE_ENTRY  # the script `insight serve` runs


def drawn_charts(at: AppTest) -> list[str | None]:
    """The panel name of every plotly chart in the run (`None`: not built by a panel)."""
    names = []
    for el in at.get("plotly_chart"):
        meta = json.loads(el.proto.spec)["layout"].get("meta")
        names.append(meta.get("insight_panel") if isinstance(meta, dict) else None)
    return names


def unregistered_charts(at: AppTest) -> list[str | None]:
    registered = set(panel_names())
    return [n for n in drawn_charts(at) if n not in registered]


def _code_blocks(at: AppTest) -> list[str]:
    return [c.value for c in at.code]


def test_every_chart_on_every_page_is_a_registered_panel():
    sample = get_sample("digits_cnn")
    ref = ModelRef(str(sample.model), True, None, "Sample: digits_cnn")
    seen: dict[str, list] = {}
    for file, title, _ in PAGES:
        at = AppTest.from_file(str(PAGE_DIR / file), default_timeout=180)
        at.session_state["insight_ref"] = ref
        at.session_state["insight_data"] = str(sample.data)
        at.session_state["insight_logdir"] = str(sample.logdir)
        at.run()
        assert not at.exception, (title, at.exception)
        assert unregistered_charts(at) == [], (title, drawn_charts(at))
        seen[title] = drawn_charts(at)
        if seen[title]:  # a drawn panel has its share link, naming the panel
            assert any("embed=true&panel=" in c for c in _code_blocks(at)), title
    assert sum(map(len, seen.values())) >= len(PAGES), seen


def test_a_chart_drawn_outside_the_registry_is_caught(tmp_path):
    script = tmp_path / "rogue_page.py"
    script.write_text("import plotly.graph_objects as go\nimport streamlit as st\n"
                      "from insight.panels import PanelContext, build_panel\n"
                      "st.plotly_chart(go.Figure(go.Bar(y=[1, 2])))\n")
    at = AppTest.from_file(str(script), default_timeout=60).run()
    assert not at.exception
    assert unregistered_charts(at) == [None]


def _embed(**query: str) -> AppTest:
    at = AppTest.from_file(str(ENTRY), default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def test_deep_link_renders_only_that_panel():
    at = _embed(panel="projection", method="pca", color="label", layer="dense1")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert drawn_charts(at) == ["projection"]
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "dense1" in spec["layout"]["title"]["text"]
    assert len(at.sidebar) == 0 and not _code_blocks(at)  # no sidebar, no share control


def test_deep_link_names_a_sample_model():
    at = _embed(panel="layer_table", model="text_embedding")
    assert not at.exception and not at.error
    assert "embedding" in at.dataframe[0].value["layer"].str.cat()


def test_bad_deep_links_list_the_valid_values():
    cases = [({"panel": "nope"}, "Existing panels are:"),
             ({"panel": "projection", "method": "bogus"}, "must be one of pca, umap, tsne"),
             ({"panel": "layer_table", "logdir": "/etc"}, "cannot name files or trust flags"),
             ({"panel": "layer_table", "model": "/etc/passwd"}, "Its models are: digits_cnn")]
    for query, fragment in cases:
        at = _embed(**query)
        assert not at.exception
        assert len(at.error) == 1 and fragment in at.error[0].value, (query, at.error)
        assert drawn_charts(at) == []


def test_share_link_of_a_typed_path_is_withheld(tmp_path):
    sample = get_sample("digits_cnn")
    copy = tmp_path / "copy.keras"
    copy.write_bytes(Path(sample.model).read_bytes())
    at = AppTest.from_file(str(PAGE_DIR / "overview.py"), default_timeout=120)
    at.session_state["insight_ref"] = ModelRef(str(copy), True, None, str(copy))
    at.session_state["insight_data"] = None
    at.session_state["insight_logdir"] = None
    at.run()
    assert not at.exception
    assert not any("embed=true" in c for c in _code_blocks(at))
    assert any("links only name the server's models" in c.value for c in at.caption)


def test_show_panel_twice_with_keys(tmp_path):
    """`show_panel(..., key=...)`: one page shows one panel twice, each chart and its share
    control under its own key; without keys the second would clash with the first."""
    logs = get_sample("digits_cnn").logdir
    script = tmp_path / "twice.py"
    script.write_text(
        "from pathlib import Path\n"
        "from insight.panels import PanelContext\n"
        "from insight.ui.cache import ModelRef\n"
        "from insight.ui.widgets import show_panel\n"
        f"ctx = PanelContext(logdir=Path({str(logs)!r}))\n"
        "for key, metric in (('left', 'epoch_loss'), ('right', 'epoch_accuracy')):\n"
        "    show_panel('training_curves', ModelRef(''), ctx, key=key, metric=metric)\n")
    at = AppTest.from_file(str(script), default_timeout=60).run()
    assert not at.exception, at.exception
    assert drawn_charts(at) == ["training_curves", "training_curves"]
    assert [c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")] == ["left", "right"]
    shares = [b.proto.id for b in at.get("download_button")]
    assert [i.rsplit("-", 1)[-1] for i in shares] == [
        "share_html|share|left", "share_png|share|left", "share_html|share|right",
        "share_png|share|right"]


def test_param_of_reads_the_schema_and_lists_the_parameters():
    import pytest

    from insight.errors import UsageError
    from insight.ui.widgets import param_of

    assert param_of("projection", "method").choices == ("pca", "umap", "tsne")
    assert param_of("top_ops", "top").default == 25
    with pytest.raises(UsageError) as excinfo:
        param_of("top_ops", "count")
    text = str(excinfo.value)
    assert "no parameter 'count'" in text and "run, level, top" in text
    assert "Received: panel='top_ops', param='count'" in text
