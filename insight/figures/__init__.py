"""Pure figure builders: plain data in, `plotly.graph_objects.Figure` or DOT text out.

One module per family, one shared template (`insight.figures.template`), so a panel looks
the same in the app, in an HTML/PNG export and in a snapshot test.
"""

__all__: list[str] = []
