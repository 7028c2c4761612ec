"""The synthetic logdir of the curves benchmark: runs x tags x steps scalars, written with
`tf.summary` (graph mode: a `tf.function` loop over `tf.range`, byte-identical events to eager
`tf.summary.scalar`), cached so reruns skip the writing.

    python benchmarks/_curves_data.py [RUNS TAGS STEPS]   # prints the logdir path
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

TAGS = ("loss", "accuracy", "learning_rate", "grad_norm", "val/loss_like")


def cache_root() -> Path:
    return Path(os.environ.get("INSIGHT_BENCH_CACHE",
                               Path(tempfile.gettempdir()) / "insight-bench-cache"))


def synthetic_logdir(runs: int = 3, tags: int = 5, steps: int = 100_000) -> Path:
    """The cached logdir (written on first call): `run_<i>/events.out.tfevents.*`."""
    root = cache_root() / f"curves_{runs}x{tags}x{steps}"
    done = root / ".complete"
    if done.exists():
        return root
    import tensorflow as tf

    names = [TAGS[i % len(TAGS)] + ("" if i < len(TAGS) else f"_{i}") for i in range(tags)]
    for r in range(runs):
        writer = tf.summary.create_file_writer(str(root / f"run_{r}"), max_queue=10_000,
                                               flush_millis=60_000)

        @tf.function
        def write(n, seed=float(r)):
            for step in tf.range(1, n + 1, dtype=tf.int64):
                x = tf.cast(step, tf.float32)
                base = 2.0 * tf.exp(-x / 20_000.0) + 0.05 * tf.sin(x * 0.37 + seed)
                for i, name in enumerate(names):
                    tf.summary.scalar(name, base * (1.0 + 0.1 * i), step=step)

        with writer.as_default():
            write(tf.constant(steps, tf.int64))
        writer.close()
    done.write_text("ok\n")
    return root


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:4]] or [3, 5, 100_000]
    print(synthetic_logdir(*args))


def warm_training_page(timeout: float = 300):
    """`page(logdir)`: a fresh AppTest of the Training page on `logdir`, after the page ran
    once on the bundled sample (imports warm) with the caches cleared and the heap frozen, as
    `insight serve` runs the app."""
    import gc

    import streamlit as st
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    from insight.model.samples import get_sample
    from insight.ui.shell import PAGE_DIR

    def page(logdir):
        at = AppTest.from_file(str(PAGE_DIR / "training.py"), default_timeout=timeout)
        at.session_state["insight_ref"] = None
        at.session_state["insight_logdir"] = str(logdir)
        return at

    config.set_option("runner.postScriptGC", False)  # as `insight serve` runs the app
    page(get_sample("digits_cnn").logdir).run()  # warm imports
    st.cache_data.clear()
    st.cache_resource.clear()
    gc.collect()
    gc.freeze()  # as the app does once TensorFlow is imported (insight.ui.runtime)
    return page
