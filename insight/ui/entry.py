"""The script `insight serve` hands to `streamlit run` (the checkout's app.py does the same)."""

from insight.ui.shell import main

main()
