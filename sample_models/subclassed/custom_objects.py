"""Custom objects needed to load `subclassed/model.keras`.

Import this module (or load it from its path) before calling
`keras.saving.load_model`; it registers `DigitsMLP` under the package
name `insight_samples`.
"""

import keras


@keras.saving.register_keras_serializable(package="insight_samples")
class DigitsMLP(keras.Model):
    """A small subclassed MLP that classifies flattened 8x8 digit images."""

    def __init__(
        self,
        hidden_units: int = 32,
        num_classes: int = 10,
        dropout_rate: float = 0.2,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_units = hidden_units
        self.num_classes = num_classes
        self.dropout_rate = dropout_rate
        self.flatten = keras.layers.Flatten(name="flatten")
        self.dense1 = keras.layers.Dense(hidden_units, activation="relu", name="dense1")
        self.dropout = keras.layers.Dropout(dropout_rate, seed=0, name="dropout")
        self.dense2 = keras.layers.Dense(hidden_units, activation="relu", name="dense2")
        self.classifier = keras.layers.Dense(num_classes, activation="softmax", name="predictions")

    def call(self, inputs, training=None):
        x = self.flatten(inputs)
        x = self.dense1(x)
        x = self.dropout(x, training=training)
        x = self.dense2(x)
        return self.classifier(x)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "hidden_units": self.hidden_units,
                "num_classes": self.num_classes,
                "dropout_rate": self.dropout_rate,
            }
        )
        return config
