"""Export, deep links and snapshots with real components: the digits_cnn sample, one headless
Chromium for the module, pixelmatch. Browser tests skip without Chromium (fail under CI=true)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from insight.cli.main import main
from insight.errors import UsageError
from insight.export.deeplink import FORBIDDEN_KEYS, parse_query, share_query, share_url
from insight.export.files import export_panel, parse_params
from insight.panels import PanelContext, get_panel, panel_names

from ._browser import require_browser
from ._errors import assert_error

SAMPLE = Path(__file__).resolve().parents[2] / "sample_models" / "digits_cnn"


@pytest.fixture(scope="module")
def ctx(load_sample):
    return PanelContext(load_sample("digits_cnn"), logdir=SAMPLE / "logs")


@pytest.fixture(scope="module")
def renderer():
    require_browser()
    from insight.export.render import Renderer

    with Renderer() as r:
        yield r


def _pixels(png: bytes):
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGBA")


# -- deep links and parameters (no browser) ------------------------------------------------

def test_no_panel_parameter_can_name_a_file_or_trust_flag():
    for name in panel_names():
        for p in get_panel(name).params:
            assert p.name.lower() not in FORBIDDEN_KEYS | {"panel", "model", "embed"}, (name, p)


def test_deep_link_round_trip():
    query = share_query("projection", {"method": "umap", "dims": 3, "regex": True},
                        model="digits_cnn")
    assert query == {"panel": "projection", "model": "digits_cnn", "method": "umap",
                     "dims": "3", "regex": "true"}
    link = parse_query({**query, "embed": "true", "embed_options": ["light_theme"]})
    assert (link.panel, link.model, link.params["dims"], link.params["regex"]) == \
        ("projection", "digits_cnn", 3, True)
    url = share_url("http://h:1/some/page", "projection", {"method": "umap"})
    assert url == "http://h:1/some/page/?embed=true&panel=projection&method=umap"


@pytest.mark.parametrize(("query", "fragments"), [
    ({"panel": "nope"}, ["No such panel: 'nope'", "Existing panels are:", "projection"]),
    ({}, ["names no panel", "param_chart"]),
    ({"panel": "projection", "method": "bogus"}, ["must be one of pca, umap, tsne",
                                                   "method='bogus'"]),
    ({"panel": "projection", "dims": "x"}, ["must be of type int", "dims='x'"]),
    ({"panel": "projection", "colour": "label"}, ["has no parameter 'colour'",
                                                   "Its parameters are: source, layer"]),
    ({"panel": "layer_table", "data": "/etc/passwd"}, ["cannot name files or trust flags",
                                                       "data='/etc/passwd'"]),
    ({"panel": "layer_table", "unsafe": "1"}, ["cannot name files or trust flags"]),
    ({"panel": "compare_summary", "compare": "/tmp/b.keras"}, ["cannot name files"]),
])
def test_bad_links_say_what_is_valid(query, fragments):
    with pytest.raises(UsageError) as excinfo:
        parse_query(query)
    assert_error(excinfo, UsageError, *fragments)


def test_param_pairs():
    assert parse_params(["method=umap", "search=a=b"]) == {"method": "umap", "search": "a=b"}
    with pytest.raises(UsageError) as excinfo:
        parse_params(["method"])
    assert_error(excinfo, UsageError, "NAME=VALUE", "--param 'method'")


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--panel", "nope", "--out", "x.html"], "No such panel: 'nope'. Existing panels are:"),
    (["--panel", "projection", "--param", "method=bogus", "--out", "x.html"],
     "must be one of pca, umap, tsne"),
    (["--panel", "projection", "--param", "nope=1", "--out", "x.html"],
     "has no parameter 'nope'"),
    (["--panel", "param_chart", "--out", "x.pdf"], "Exports are written as .html, .png, .svg"),
])
def test_export_cli_bad_arguments(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `--out x.html` is relative: nothing may appear here
    assert main(["export", "digits_cnn", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and fragment in err and "Received:" in err, err
    assert len(err.splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_snapshot_cli_bad_panel(capsys, tmp_path):
    assert main(["snapshot", "digits_cnn", "--baseline-dir", str(tmp_path),
                 "--panels", "projection?method=bogus"]) == 2
    assert "must be one of pca, umap, tsne" in capsys.readouterr().err


def test_all_panels_share_one_statistics_pass(load_sample, tmp_path, monkeypatch):
    """The activation panels read one statistics pass, the gradient panels one gradient
    batch, and the data is loaded once, for the whole gallery."""
    import insight.data as data
    import insight.panels.activations as act
    import insight.panels.gradients as grad
    from insight.export.files import export_all

    calls = {"stats": 0, "gradients": 0, "dataset": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(act, "activation_stats", counted("stats", act.activation_stats))
    monkeypatch.setattr(grad, "gradients", counted("gradients", grad.gradients))
    monkeypatch.setattr(data, "dataset_for", counted("dataset", data.dataset_for))
    names = ["activation_table", "activation_ridge", "gradient_table", "gradient_norms",
             "weight_histograms", "example_input"]
    items = export_all(PanelContext(load_sample("digits_cnn")), tmp_path, names=names,
                       formats=("html",))
    assert [i.name for i in items if i.skipped] == []
    assert calls == {"stats": 1, "gradients": 1, "dataset": 1}


# -- rendering (browser) -------------------------------------------------------------------

@pytest.mark.slow
def test_two_exports_are_pixel_identical(ctx, renderer, tmp_path):
    from PIL import ImageChops

    for name, params in (("projection", {"method": "pca", "color": "label"}),
                         ("layer_table", {}), ("attribution", {"method": "grad_cam"})):
        fresh = PanelContext(ctx.loaded, ctx.data_path, ctx.logdir)  # rebuilt, not memoised
        a = export_panel(ctx, name, params, tmp_path / f"{name}-a.png", renderer=renderer)
        b = export_panel(fresh, name, params, tmp_path / f"{name}-b.png", renderer=renderer)
        img_a, img_b = _pixels(a.read_bytes()), _pixels(b.read_bytes())
        assert img_a.size == img_b.size and img_a.size[0] >= 600
        assert ImageChops.difference(img_a, img_b).getbbox() is None, name
        assert len(set(img_a.getdata())) > 10  # something was drawn
    html_a = export_panel(ctx, "param_chart", {}, tmp_path / "p-a.html").read_bytes()
    html_b = export_panel(ctx, "param_chart", {}, tmp_path / "p-b.html").read_bytes()
    assert html_a == html_b


def test_svg_export(ctx, renderer, tmp_path):
    svg = export_panel(ctx, "param_chart", {}, tmp_path / "p.svg", renderer=renderer)
    text = svg.read_text()
    assert text.startswith("<svg") and "Parameters per layer" in text


@pytest.mark.slow
def test_html_export_renders_offline(ctx, tmp_path):
    browser = require_browser()
    from playwright.sync_api import sync_playwright

    out = export_panel(ctx, "param_chart", {}, tmp_path / "params.html")
    text = out.read_text()
    assert "<script src=" not in text and len(text) > 3_000_000  # plotly.js inlined
    requests: list[str] = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(browser), args=["--no-sandbox"])
        context = b.new_context(offline=True)
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto(out.as_uri())
        page.locator(".js-plotly-plot .main-svg").first.wait_for(state="visible", timeout=20000)
        bars = page.locator(".js-plotly-plot .bars path").count()
        title = page.locator(".js-plotly-plot .gtitle").first.text_content()
        b.close()
    assert bars == len(ctx.loaded.model.layers)  # one bar per layer
    assert title.startswith("Parameters per layer")
    assert all(u.startswith(("file:", "data:", "blob:")) for u in requests), requests


def test_all_panels_gallery(ctx, renderer, tmp_path):
    from insight.export.files import export_all

    names = ["param_chart", "model_card", "training_curves" if "training_curves" in
             panel_names() else "layer_table"]
    items = export_all(ctx, tmp_path, names=names, renderer=renderer)
    index = (tmp_path / "index.html").read_text()
    for item in items:
        assert not item.skipped, item
        assert (tmp_path / f"{item.name}.png").read_bytes()[:4] == b"\x89PNG"
        assert f"{item.name}.html" in index
    assert (tmp_path / "plotly.min.js").stat().st_size > 3_000_000


@pytest.mark.slow
def test_snapshot_cycle_after_changed_weights(ctx, renderer, tmp_path, capsys):
    """`insight snapshot` writes fresh baselines; other weights fail with a diff image;
    --update rewrites the baseline and then it passes. The changed model is a file of its own
    (loaded through the sandbox child, once); the original is the bundled sample. The last two
    steps call the library on the module's renderer: each CLI run starts a Chromium."""
    import keras
    import numpy as np

    from insight.export.snapshot import snapshot_panels

    changed, base = tmp_path / "model.keras", tmp_path / "baselines"
    m = keras.models.load_model(SAMPLE / "model.keras")
    rng = np.random.default_rng(0)
    m.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in m.get_weights()])
    m.save(changed)
    shutil.copy(SAMPLE / "data.npz", tmp_path / "data.npz")
    spec = "weight_histograms?layer=dense1"
    argv = ["--baseline-dir", str(base), "--panels", spec]
    baseline = base / "weight_histograms--layer=dense1.png"

    assert main(["snapshot", str(changed), *argv, "--update"]) == 0
    assert "1 updated, 0 failed" in capsys.readouterr().out
    assert [p.name for p in base.iterdir()] == [baseline.name]
    written = baseline.read_bytes()
    assert main(["snapshot", "digits_cnn", *argv]) == 1
    out = capsys.readouterr()
    assert "failed   weight_histograms?layer=dense1" in out.out and "1 failed" in out.err
    diff = tmp_path / "baselines-failures" / "weight_histograms--layer=dense1"
    assert {p.name for p in diff.iterdir()} == {"actual.png", "expected.png", "diff.png"}
    assert (diff / "expected.png").read_bytes() == written
    red = [px for px in _pixels((diff / "diff.png").read_bytes()).getdata()
           if px[0] > 200 and px[1] < 60 and px[2] < 60]
    assert len(red) > 100  # the differing pixels are marked

    updated = snapshot_panels(ctx, base, [spec], update=True, renderer=renderer)
    assert [r.status for r in updated] == ["updated"] and baseline.read_bytes() != written
    assert [r.status for r in snapshot_panels(ctx, base, [spec], renderer=renderer)] == \
        ["passed"]


def test_browser_lookup_honours_the_environment(monkeypatch, tmp_path):
    from insight.export.render import find_browser

    monkeypatch.setenv("INSIGHT_BROWSER", str(tmp_path / "no-chromium"))
    with pytest.raises(UsageError) as excinfo:
        find_browser()
    assert_error(excinfo, UsageError, "INSIGHT_BROWSER is not an executable file",
                 "no-chromium")
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.delenv("INSIGHT_BROWSER")
    monkeypatch.setenv("BROWSER_PATH", str(fake))
    assert find_browser() == fake
    assert find_browser(str(fake)) == fake


@pytest.mark.slow
def test_assert_panel_matches_helper(load_sample, tmp_path):
    require_browser()
    from insight.testing import assert_panel_matches

    loaded = load_sample("digits_cnn")
    assert_panel_matches(loaded, "param_chart", baseline_dir=tmp_path, update=True)
    assert (tmp_path / "param_chart.png").is_file()
    assert_panel_matches(loaded, "param_chart", baseline_dir=tmp_path)
    (tmp_path / "layer_graph.png").write_bytes((tmp_path / "param_chart.png").read_bytes())
    with pytest.raises(AssertionError, match="panel 'layer_graph' failed: "):
        assert_panel_matches(loaded, "layer_graph", baseline_dir=tmp_path)
    with pytest.raises(AssertionError, match="missing: no baseline"):
        assert_panel_matches(loaded, "model_card", baseline_dir=tmp_path)
