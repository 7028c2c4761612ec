"""The app frame: page config, the shared sidebar, navigation over the pages."""

from __future__ import annotations

import streamlit as st

from insight.shipped import shipped_folder
from insight.ui.runtime import keep_keras_session
from insight.ui.serve import page_drawn
from insight.ui.sidebar import draw_sidebar, launch_options

__all__ = ["main", "PAGES"]

PAGE_DIR = shipped_folder("app_pages")  # app_pages/ in a checkout, insight.app_pages in a wheel
# (file, title, icon): every page is reachable from the sidebar navigation.
PAGES = [
    ("overview.py", "Overview", ":material/account_tree:"),
    ("doctor.py", "Doctor", ":material/stethoscope:"),
    ("activations.py", "Activations", ":material/grid_on:"),
    ("gradients.py", "Gradients", ":material/trending_down:"),
    ("embeddings.py", "Embeddings", ":material/scatter_plot:"),
    ("training.py", "Training", ":material/show_chart:"),
    ("runs.py", "Runs", ":material/table_rows:"),
    ("compare.py", "Compare", ":material/compare:"),
    ("checkpoints.py", "Checkpoints", ":material/history:"),
    ("profiler.py", "Profiler", ":material/timer:"),
    ("compiler.py", "XLA compiler", ":material/memory:"),
]


def main() -> None:
    """Run one script pass of the app."""
    keep_keras_session()
    try:
        _run()
    finally:
        page_drawn()  # `insight serve`'s optional warm-up waits for the first page


def _run() -> None:
    st.set_page_config(page_title="insight", page_icon=":material/insights:", layout="wide")
    if "panel" in st.query_params:  # a deep link: that panel alone, no sidebar or pages
        from insight.ui.embed import render_embed

        render_embed(launch_options())
        return
    draw_sidebar(launch_options())
    pages = [st.Page(PAGE_DIR / f, title=t, icon=i, default=n == 0)
             for n, (f, t, i) in enumerate(PAGES)]
    st.navigation(pages, position="sidebar").run()
