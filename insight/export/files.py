"""Export registered panels: self-contained HTML, PNG and SVG, one panel or a whole gallery.

The same builder the app draws (`insight.panels.build_panel`) produces the result; figures keep
the one insight template and get a fixed size, tables and cards become HTML tables (and, for
images, a plotly table figure drawn by the same browser). Nothing in a file depends on the time
or the machine's random state, so the same model, data and parameters give the same bytes for
HTML and the same pixels for images on one machine.

Example:

>>> from insight.export import export_panel
>>> from insight.panels import PanelContext
>>> export_panel(PanelContext(loaded), "param_chart", {}, "params.png")  # doctest: +SKIP
PosixPath('params.png')
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from insight.errors import InsightError, UsageError
from insight.export.render import Renderer, check_rendering
from insight.figures.template import FONT, apply_template
from insight.panels.registry import (
    PanelContext,
    build_panel,
    get_panel,
    panel_names,
    validate_params,
)

__all__ = ["EXTENSIONS", "FIGURE_SIZE", "export_panel", "export_all", "panel_html",
           "result_figure", "figure_size", "render_result", "parse_params", "Exported",
           "shared_context"]

EXTENSIONS = (".html", ".png", ".svg")
FIGURE_SIZE = (900, 560)  # CSS pixels of an exported figure that sets no size of its own
TABLE_ROWS = 60  # rows of a table drawn as an image (the HTML keeps them all)
_CSS = f"""body{{font-family:{FONT};color:#222;margin:16px;background:white}}
h1{{font-size:18px;margin:0 0 4px}} p.meta{{color:#666;font-size:12px;margin:0 0 12px}}
table{{border-collapse:collapse;font-size:13px}} th,td{{border:1px solid #ddd;padding:3px 8px;
text-align:left;vertical-align:top}} th{{background:#f3f5f8}}"""


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """`["k=v", ...]` (the CLI's `--param`) as a dict of raw strings.

    Raises:
        UsageError: an item without `=`.
    """
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError("A panel parameter is written NAME=VALUE.",
                             "For example --param method=umap.", f"--param {pair!r}")
        out[key.strip()] = value
    return out


def figure_size(fig: go.Figure) -> tuple[int, int]:
    """The fixed size a figure is exported at: its own, else `FIGURE_SIZE`."""
    width = fig.layout.width or FIGURE_SIZE[0]
    height = fig.layout.height or FIGURE_SIZE[1]
    return int(width), int(height)


_BLOCKS = "▁▂▃▄▅▆▇█"
_CELL_CHARS = 80  # longest cell text in an image; the HTML keeps it whole


def _spark(values: list[float]) -> str:
    """Numbers as a one-line bar sparkline of at most 16 characters."""
    step = max(1, -(-len(values) // 16))
    sums = [sum(values[i:i + step]) for i in range(0, len(values), step)]
    top = max(sums) or 1.0
    return "".join(_BLOCKS[min(7, max(0, int(v / top * 7.999)))] for v in sums)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"  # NaN -> empty
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        seq = list(value.tolist() if hasattr(value, "tolist") else value)
        if seq and all(isinstance(v, (int, float)) for v in seq):
            return _spark([float(v) for v in seq])
        return ", ".join(map(str, seq))
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def _card_frame(card: Mapping[str, Any]) -> pd.DataFrame:
    rows = []
    for key, value in card.items():
        if key == "file" and value:  # the file's name: no machine's folders in an image
            value = Path(str(value)).name
        if isinstance(value, list) and value and isinstance(value[0], dict):
            for n, item in enumerate(value):
                rows.append((f"{key}[{n}]", _cell(item)))
        else:
            rows.append((key, _cell(value)))
    return pd.DataFrame(rows, columns=["field", "value"])


def _frame(result: Any, kind: str) -> pd.DataFrame:
    if kind == "card":
        return _card_frame(result)
    if kind == "dot":
        return pd.DataFrame({"dot": str(result).splitlines()})
    return result


def result_figure(result: Any, kind: str, title: str) -> go.Figure:
    """A figure for any panel result: figures as they are, tables and cards as a plotly
    table (at most `TABLE_ROWS` rows), all in the insight template."""
    if kind == "figure":
        return result
    frame = _frame(result, kind)
    shown = frame.head(TABLE_ROWS)
    cells = [[_short(_cell(v)) for v in shown[c]] for c in shown.columns]
    chars = [max([len(str(c))] + [len(v) for v in col]) for c, col in
             zip(shown.columns, cells, strict=True)]
    width = min(1600, max(600, int(sum(7.2 * n + 18 for n in chars)) + 20))
    fig = go.Figure(go.Table(
        columnwidth=[7.2 * n + 18 for n in chars],
        header=dict(values=[f"<b>{html.escape(str(c))}</b>" for c in shown.columns],
                    fill_color="#f3f5f8", align="left", line_color="#ddd", height=26),
        cells=dict(values=cells, align="left", line_color="#ddd", height=24)))
    more = f" (first {TABLE_ROWS} of {len(frame)} rows)" if len(frame) > TABLE_ROWS else ""
    apply_template(fig, title=title + more)
    fig.update_layout(width=width, height=80 + 26 + 24 * len(shown),
                      margin=dict(l=10, r=10, t=50, b=10), title_x=0.01)
    return fig


def _short(text: str) -> str:
    return text if len(text) <= _CELL_CHARS else text[:_CELL_CHARS - 1] + "…"


def _caption(title: str, model: str, params: Mapping[str, Any]) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in params.items() if v not in ("", None))
    meta = f"insight panel · model {model}" + (f" · {shown}" if shown else "")
    return f"<h1>{html.escape(title)}</h1><p class='meta'>{html.escape(meta)}</p>"


def panel_html(result: Any, name: str, params: Mapping[str, Any], model: str = "",
               *, plotlyjs: str | bool = True) -> str:
    """A complete HTML page for a panel result.

    Args:
        result: what `build_panel(name, ...)` returned.
        name: the panel's name.
        params: its parameters (shown under the title).
        model: the model's name, shown under the title. Defaults to `""`.
        plotlyjs: `True` inlines plotly.js (self-contained, works offline);
            `"directory"` loads `plotly.min.js` from beside the file. Defaults to `True`.
    """
    panel = get_panel(name)
    head = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
            f"{html.escape(panel.title)} · insight</title><style>{_CSS}</style></head><body>")
    if panel.kind == "figure":
        width, height = figure_size(result)
        body = pio.to_html(result, include_plotlyjs=plotlyjs, full_html=False,
                           div_id=f"insight-{name}", default_width=f"{width}px",
                           default_height=f"{height}px",
                           config={"displaylogo": False, "responsive": False})
        return head + body + "</body></html>"
    frame = _frame(result, panel.kind)
    table = frame.map(_cell).to_html(index=False, escape=True, border=0)
    return head + _caption(panel.title, model, params) + table + "</body></html>"


def render_result(result: Any, name: str, fmt: str, renderer: Renderer) -> bytes:
    """PNG or SVG bytes of a panel result, at its fixed size."""
    panel = get_panel(name)
    fig = result_figure(result, panel.kind, panel.title)
    width, height = figure_size(fig)
    return renderer.render(fig, fmt, width, height)


def _model_name(ctx: PanelContext) -> str:
    if ctx.loaded is not None:
        return ctx.loaded.name
    return ctx.preflight.path.name if ctx.preflight is not None else ""


def export_panel(ctx: PanelContext, name: str, params: Mapping[str, Any], out: str | Path,
                 *, renderer: Renderer | None = None) -> Path:
    """Build panel `name` with `params` and write it to `out` (`.html`, `.png` or `.svg`).

    Args:
        ctx: the model, data and logdir.
        name: a registered panel.
        params: raw or typed parameters, validated against the panel's schema.
        out: the file to write; its suffix picks the format.
        renderer: an open `Renderer` for images; `None` opens one for this call.
            Defaults to `None`.

    Raises:
        UsageError: unknown panel, bad parameter or unsupported suffix; for an image without
            `renderer`, kaleido missing or no Chromium (before the panel is built).
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in EXTENSIONS:
        raise UsageError(f"Exports are written as {', '.join(EXTENSIONS)} files.",
                         "Name the output file with one of those suffixes.", f"--out {str(out)!r}")
    typed = validate_params(get_panel(name), params)
    if suffix != ".html" and renderer is None:
        check_rendering()  # before the (maybe long) build
    result = build_panel(name, ctx, **typed)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".html":
        out.write_text(panel_html(result, name, typed, _model_name(ctx)), encoding="utf-8")
        return out
    own = renderer is None
    renderer = renderer or Renderer()
    try:
        out.write_bytes(render_result(result, name, suffix[1:], renderer))
    finally:
        if own:
            renderer.close()
    return out


def shared_context(ctx: PanelContext) -> PanelContext:
    """`ctx`, or when it has no memo a copy with one for the panels built from it: a
    computation several panels read through `ctx.cached` (one statistics pass over the data
    for the activation table and ridge plot; one gradient batch for the gradient panels) runs
    once. A failed computation is not kept: the next panel tries again and says why."""
    if ctx.memo is not None:
        return ctx
    store: dict[str, Any] = {}

    def memo(key: str, compute: Callable[[], Any]) -> Any:
        if key not in store:
            store[key] = compute()
        return store[key]

    return replace(ctx, memo=memo)


@dataclass(frozen=True)
class Exported:
    """One panel of a gallery: its files, or why it was skipped."""

    name: str
    title: str
    files: tuple[str, ...] = ()
    skipped: str = ""


def _gallery(items: Sequence[Exported], model: str) -> str:
    cards = []
    for item in items:
        title = html.escape(item.title)
        if item.skipped:
            cards.append(f"<div class='card skipped'><h2>{title}</h2><code>{item.name}</code>"
                         f"<p>Not exported: {html.escape(item.skipped)}</p></div>")
            continue
        png = next((f for f in item.files if f.endswith(".png")), "")
        page = next((f for f in item.files if f.endswith(".html")), png)
        img = f"<img src='{png}' alt='{title}'>" if png else ""
        cards.append(f"<div class='card'><h2><a href='{page}'>{title}</a></h2>"
                     f"<code>{item.name}</code><a href='{page}'>{img}</a></div>")
    style = (_CSS + ".grid{display:flex;flex-wrap:wrap;gap:16px}.card{width:460px;border:1px "
             "solid #ddd;padding:8px}.card img{width:100%}.card h2{font-size:15px;margin:0}"
             ".skipped{color:#888}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>insight · "
            f"{html.escape(model)}</title><style>{style}</style></head><body><h1>insight panels:"
            f" {html.escape(model)}</h1><div class='grid'>{''.join(cards)}</div></body></html>")


def export_all(ctx: PanelContext, out_dir: str | Path, *, names: Sequence[str] | None = None,
               formats: Sequence[str] = ("html", "png"),
               renderer: Renderer | None = None) -> list[Exported]:
    """Every panel (or `names`) with default parameters into `out_dir`, plus `index.html`.

    Panels that cannot be built for this model with their defaults (no logdir given, a
    format that rules them out) are listed in the gallery with the reason. The HTML files
    share one `plotly.min.js` beside them, so the folder works offline. Every panel is built
    from one context with one memo (`shared_context`), so what panels share (the data, the
    activation statistics, the gradients, an XLA compilation) is computed once.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = shared_context(ctx)
    items: list[Exported] = []
    own = renderer is None and any(f != "html" for f in formats)
    renderer = Renderer() if own else renderer
    try:
        for name in names or panel_names():
            panel = get_panel(name)
            try:
                typed = validate_params(panel, {})
                result = build_panel(name, ctx, **typed)
            except InsightError as exc:
                items.append(Exported(name, panel.title, skipped=str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001  a bug in one panel: say so, go on
                items.append(Exported(name, panel.title,
                                      skipped=f"unexpected {type(exc).__name__}: {exc}"))
                continue
            files = []
            for fmt in formats:
                path = out / f"{name}.{fmt}"
                if fmt == "html":
                    path.write_text(panel_html(result, name, typed, _model_name(ctx),
                                               plotlyjs="directory"), encoding="utf-8")
                else:
                    path.write_bytes(render_result(result, name, fmt, renderer))
                files.append(path.name)
            items.append(Exported(name, panel.title, tuple(files)))
    finally:
        if own:
            renderer.close()
    if "html" in formats:
        from plotly.offline import get_plotlyjs

        (out / "plotly.min.js").write_text(get_plotlyjs(), encoding="utf-8")
    (out / "index.html").write_text(_gallery(items, _model_name(ctx)), encoding="utf-8")
    (out / "panels.json").write_text(json.dumps(
        [{"name": i.name, "files": list(i.files), "skipped": i.skipped} for i in items],
        indent=1), encoding="utf-8")
    return items
