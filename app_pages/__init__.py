"""The app's pages, one thin script per page (Streamlit runs them by path; shipped in the
wheel as `insight.app_pages`)."""
