"""Small models built on the fly that several test files need."""

from __future__ import annotations

from pathlib import Path

STRING_LAYER = '''"""A layer with a string op: TensorFlow runs it, XLA has no kernel for it."""
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="{package}")
class DigitCount(keras.layers.Layer):
    def call(self, x):
        text = tf.strings.as_string(x)
        return x + tf.cast(tf.strings.length(text), x.dtype) * 0.0
'''


def uncompilable_model(folder: Path, package: str) -> tuple[Path, Path]:
    """`(model.keras, custom-objects file)` of a model XLA cannot compile (a string op in a
    layer called `count_digits`); `package` keeps each caller's registration apart."""
    import keras

    from insight.model.loading import load_custom_objects

    layers = folder / "string_layers.py"
    layers.write_text(STRING_LAYER.replace("{package}", package))
    cls = load_custom_objects(layers)["DigitCount"]
    inp = keras.Input((4,), name="x")
    out = keras.layers.Dense(2, name="out")(cls(name="count_digits")(inp))
    path = folder / "string_op.keras"
    keras.Model(inp, out, name="string_op").save(path)
    return path, layers
