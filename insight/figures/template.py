"""The one plotly template every insight figure uses (app, export and snapshots alike).

Example:

>>> import plotly.graph_objects as go
>>> from insight.figures.template import apply_template
>>> fig = apply_template(go.Figure(), title="Parameters")
>>> fig.layout.template.layout.font.family
'Liberation Sans, Arial, sans-serif'
"""

from __future__ import annotations

import plotly.graph_objects as go

__all__ = ["COLORWAY", "FONT", "apply_template", "insight_template", "template_name",
           "template_json", "e_notation"]

FONT = "Liberation Sans, Arial, sans-serif"
COLORWAY = ["#3b6fb6", "#e07b39", "#4c9a5b", "#b8453c", "#7d5ba6", "#8c6d46", "#d16ba5",
            "#6f6f6f", "#b5a532", "#3fa7b5"]


def insight_template() -> go.layout.Template:
    """A light, fixed-font template: deterministic pixels wherever it renders."""
    return go.layout.Template(
        layout=go.Layout(
            font=dict(family=FONT, size=13, color="#222"),
            colorway=COLORWAY,
            paper_bgcolor="white",
            plot_bgcolor="white",
            margin=dict(l=60, r=20, t=50, b=50),
            xaxis=dict(gridcolor="#e5e5e5", zerolinecolor="#c8c8c8", automargin=True),
            yaxis=dict(gridcolor="#e5e5e5", zerolinecolor="#c8c8c8", automargin=True),
            hoverlabel=dict(font=dict(family=FONT)),
            title=dict(x=0.0, xanchor="left", font=dict(size=16)),
        )
    )


def template_name() -> str:
    """The name under which the insight template is registered with plotly (registered on
    first use); `apply_template` applies it by name."""
    import plotly.io as pio

    if "insight" not in pio.templates:
        pio.templates["insight"] = insight_template()
    return "insight"


_TEMPLATE_JSON: dict | None = None


def template_json() -> dict:
    """The template as a plain dict, for figures built from dicts without validation
    (`layout={"template": template_json()}`; a name would reach plotly.js unresolved).
    Shared: do not mutate it."""
    global _TEMPLATE_JSON
    if _TEMPLATE_JSON is None:
        _TEMPLATE_JSON = insight_template().to_plotly_json()
    return _TEMPLATE_JSON


def apply_template(fig: go.Figure, *, title: str | None = None) -> go.Figure:
    """Give `fig` the insight template (and a title); returns the same figure.

    The template is registered once with plotly under the name "insight" and applied by
    name: building and validating a `Template` for every figure cost ~30-100 ms each.
    """
    fig.update_layout(template=template_name())
    if title is not None:
        fig.update_layout(title_text=title)
    return fig


def e_notation(fig: go.Figure) -> go.Figure:
    """Write exponents as `1e-12` on every axis and colour bar of `fig` (returns it).

    Plotly's default writes small numbers with SI prefixes ("1p", "20f", "50µ"), which read
    as units; activations, gradients and their norms span 1e-15 to 1e3. Not part of the
    template: large counts elsewhere read better as "2M" than "2e+6".

    >>> import plotly.graph_objects as go
    >>> fig = e_notation(go.Figure(go.Heatmap(z=[[1e-12, 2e-12]])))
    >>> fig.layout.xaxis.exponentformat, fig.data[0].colorbar.exponentformat
    ('e', 'e')
    """
    fig.update_xaxes(exponentformat="e")
    fig.update_yaxes(exponentformat="e")
    fig.update_scenes(xaxis_exponentformat="e", yaxis_exponentformat="e",
                      zaxis_exponentformat="e")
    for trace in fig.data:
        if "colorbar" in trace:
            trace.colorbar.exponentformat = "e"
        if "marker" in trace and "colorbar" in trace.marker and \
                trace.marker.colorscale is not None:
            trace.marker.colorbar.exponentformat = "e"
    return fig
