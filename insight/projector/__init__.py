"""Embedding projections: PCA, UMAP and t-SNE of any vectors, and nearest neighbours.

- `projection`: the projections and the neighbour search (`insight.project`,
  `insight.neighbors`);
- `sources`: where vectors come from (a layer's outputs, an Embedding's weights, files, a
  TensorBoard projector logdir);
- `layers`: a layer's outputs over data in memory or a stream, batch by batch;
- `vectors`: the `Vectors` every source returns.
"""

__all__: list[str] = []  # the public names are `insight`'s; import the modules
