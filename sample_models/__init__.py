"""Bundled sample models. Rebuild them with `python sample_models/build.py`."""
