"""insight from a checkout: `streamlit run app.py -- path/to/model.keras [--data X] [--logdir D]`.

`insight serve` runs the same app from the installed package.
"""

from insight.ui.shell import main

main()
