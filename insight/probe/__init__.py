"""What happens inside a loaded model on data: activations, gradients, statistics.

- `capture`: every layer's output in one compiled forward pass;
- `backprop`: gradients of the loss w.r.t. every weight and layer output, in one pass;
- `losses`: which loss each output is differentiated by, with which labels and weight (one
  answer for gradients, `ActivationLogger` and the profiler's training steps);
- `lossfn`: one output's Keras loss, evaluated as Keras' training step evaluates it (a
  cross-entropy reads the logits behind a softmax or sigmoid output);
- `stats`: activation statistics streamed over a whole dataset;
- `logged`: the per-layer statistics `ActivationLogger` writes (small layers by numpy);
- `attribution`: saliency, SmoothGrad, integrated gradients, Grad-CAM;
- `report`: statistics joined with gradient norms, one table per model (`insight stats`).

The public names are `insight.activations`, `insight.gradients`, `insight.activation_stats`,
`insight.attributions`.
"""

__all__: list[str] = []  # the public names are `insight`'s; import the modules
