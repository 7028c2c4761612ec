"""The Streamlit app: the only package of insight that imports streamlit.

`entry.py` is the script Streamlit runs; `shell.main()` draws the frame (page config,
sidebar, navigation); `app_pages/` holds one thin file per page.
"""
