"""The Streamlit app: the only package of insight that imports streamlit.

`entry.py` is the script Streamlit runs; `shell.main()` draws the frame (page config,
sidebar, navigation); the pages themselves are the
repository's top-level `app_pages/` (shipped as `insight.app_pages`), one thin file per
page.
"""

__all__: list[str] = []
