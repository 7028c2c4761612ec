"""Deep links: one panel, its parameters in the URL, for iframes in team wikis.

`/?embed=true&panel=projection&layer=dense1&method=umap&color=label` renders only the
`projection` panel (Streamlit's `embed=true` hides its own chrome). Every key but `panel`,
`model` and Streamlit's `embed`/`embed_options` is a parameter of the panel, checked against its
schema. A URL never names a file or a trust flag: the model is the one the server was started
with, or one of its named models (`model=digits_cnn`, a bundled sample), and the data and
logdir are the ones that model was served with.

Example:

>>> link = parse_query({"panel": "projection", "method": "umap", "dims": "3"})
>>> link.panel, link.params["method"], link.params["dims"], link.model
('projection', 'umap', 3, None)
>>> share_query("projection", {"method": "umap", "dims": 2})
{'panel': 'projection', 'method': 'umap'}
>>> parse_query({"panel": "projection", "data": "/etc/passwd"})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
insight.errors.UsageError: A link cannot name files or trust flags (data): ...
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from insight.errors import UsageError
from insight.panels.registry import Panel, get_panel, validate_params

__all__ = ["DeepLink", "parse_query", "share_query", "share_url", "page_url", "iframe_html",
           "FORBIDDEN_KEYS", "STREAMLIT_KEYS"]

# Streamlit's own embed keys: never passed to a panel.
STREAMLIT_KEYS = frozenset({"embed", "embed_options"})
# Keys that would choose files or loosen safety: refused outright, whatever the panel.
FORBIDDEN_KEYS = frozenset({
    "path", "file", "model_path", "data", "data_path", "logdir", "vectors", "vectors_path",
    "metadata", "metadata_path", "custom_objects", "unsafe", "safe_mode", "trust", "trusted",
    "compare", "compare_path", "checkpoints",
})


@dataclass(frozen=True)
class DeepLink:
    """A parsed deep link: the panel, its typed parameters (defaults filled in), the model
    name (`None`: the server's default model)."""

    panel: str
    params: dict[str, Any] = field(default_factory=dict)
    model: str | None = None


def _one(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return str(value[-1]) if value else ""
    return str(value)


def parse_query(query: Mapping[str, Any]) -> DeepLink:
    """The deep link in URL query parameters (values are strings, or lists of them).

    Raises:
        UsageError: no or unknown panel (the panels are listed), a forbidden key (a path or
            trust flag), an unknown parameter or a bad value (the valid ones are listed).
    """
    raw = {k: _one(v) for k, v in query.items() if k not in STREAMLIT_KEYS}
    name = raw.pop("panel", "").strip()
    if not name:
        from insight.panels.registry import panel_names

        raise UsageError("The link names no panel.",
                         f"Add panel=NAME; panels are: {', '.join(panel_names())}.", "panel=''")
    panel = get_panel(name)
    model = raw.pop("model", None)
    bad = sorted(k for k in raw if k.lower() in FORBIDDEN_KEYS)
    if bad:
        raise UsageError(
            f"A link cannot name files or trust flags ({', '.join(bad)}): the server decides "
            "which model, data and logdir it shows.",
            "Remove them; start `insight serve` with --data/--logdir instead.",
            f"{bad[0]}={raw[bad[0]]!r}")
    return DeepLink(name, validate_params(panel, raw), model.strip() if model else None)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def share_query(name: str, params: Mapping[str, Any], model: str | None = None
                ) -> dict[str, str]:
    """The query parameters that reproduce panel `name` with `params`: only the ones that
    differ from the schema's defaults, after `panel` (and `model` when given)."""
    panel: Panel = get_panel(name)
    typed = validate_params(panel, {k: v for k, v in params.items()
                                    if k in {p.name for p in panel.params}})
    out = {"panel": name}
    if model:
        out["model"] = model
    for p in panel.params:
        if typed[p.name] != p.default:
            out[p.name] = _text(typed[p.name])
    return out


def share_url(base: str, name: str, params: Mapping[str, Any], model: str | None = None
              ) -> str:
    """The embed URL of a panel: `base` (the app's root URL) plus the query.

    Example:

    >>> share_url("http://127.0.0.1:8501/", "param_chart", {})
    'http://127.0.0.1:8501/?embed=true&panel=param_chart'
    """
    query = {"embed": "true", **share_query(name, params, model)}
    return base.rstrip("/") + "/?" + urlencode(query)


def page_url(base: str, name: str, params: Mapping[str, Any], model: str | None = None
             ) -> str:
    """The same link as a plain page (`insight serve`'s `/_insight/panel`: the exported HTML,
    no Streamlit session).

    Example:

    >>> page_url("http://127.0.0.1:8501/", "param_chart", {})
    'http://127.0.0.1:8501/_insight/panel?panel=param_chart'
    """
    return base.rstrip("/") + "/_insight/panel?" + urlencode(share_query(name, params, model))


def iframe_html(url: str, title: str, height: int = 620) -> str:
    """The HTML snippet a wiki page embeds the panel with."""
    return (f'<iframe src="{html.escape(url)}" title="{html.escape(title)}" width="100%" '
            f'height="{int(height)}" style="border:0" loading="lazy"></iframe>')
