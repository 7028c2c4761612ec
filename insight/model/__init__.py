"""The model file and the loaded model: preflight, safe loading, graph, summary, samples.

- `preflight`: static inspection of a file before anything in it is deserialized, over
  `files` (the `.keras` archive and the `.h5` file read as data), `savedmodel` (the
  SavedModel protobuf, without TensorFlow) and `config_scan` (the config walked for Lambda
  layers, custom classes and foreign references);
- `loading`: safe loading of any Keras artifact into a `LoadedModel`;
- `graph`: the layer graph, read from the config;
- `summary`: the model card and layer table;
- `layers`: layer paths, walking nested models, shapes as text (used everywhere);
- `samples`: the bundled sample models.

The public names are `insight.preflight`, `insight.load_model`, `insight.model_card`, ...
"""

__all__: list[str] = []  # the public names are `insight`'s; import the modules
