"""Panels leaving the app: files, headless rendering, snapshot tests, deep links.

- `files`: self-contained HTML, PNG and SVG of one panel or a gallery (`insight.export_panel`);
- `render`: headless Chromium rendering of figures to PNG/SVG;
- `snapshot`: screenshot regression tests (`insight.snapshot_panels`, `insight.testing`);
- `deeplink`: one panel and its parameters in a URL, for iframes in team wikis.

Example:

>>> from insight.export import export_panel  # doctest: +SKIP
"""

from insight.export.files import export_all, export_panel, panel_html

__all__ = ["export_panel", "export_all", "panel_html"]
