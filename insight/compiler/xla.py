"""How XLA compiles a Keras model: HLO before and after optimisation, mapped back to layers.

`compile_model` traces the model's forward pass (or a train step) into a
`tf.function(..., jit_compile=True)` for one batch and asks TensorFlow for the HLO XLA builds
from it (`experimental_get_compiler_ir(...)(stage="hlo")`) and the HLO after XLA's passes
(`stage="optimized_hlo"`: fusion, layout, simplification). While tracing, every layer records
the TensorFlow name scope it ran in (`conv1_1`, `outer_1/backbone_1/conv2_1`), so each HLO
instruction's `op_name` leads back to its layer exactly, nested models and the backward pass
(`gradient_tape/conv1_1/...`) included.

The train step is forward (`training=True`), loss, gradients and an SGD update that is
*computed and returned, not applied*: it runs through `Model.stateless_call`, so neither the
weights nor BatchNorm statistics of the model change.

Example:

>>> import insight
>>> from insight.compiler.xla import compile_model
>>> loaded = insight.load_model("sample_models/digits_cnn/model.keras")  # doctest: +SKIP
>>> comp = compile_model(loaded, x[:32])  # doctest: +SKIP
>>> comp.op_count_table().set_index("opcode").loc["fusion", "after"]  # doctest: +SKIP
8
>>> comp.layer_of("digits_cnn_1/conv1_1/convolution")  # doctest: +SKIP
'conv1'
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from insight.compiler.compilation import FUNCTIONS, STAGE_TITLES, STAGES, XlaCompilation
from insight.compiler.hlo import parse_hlo
from insight.errors import CompileError, DataError, InsightError, UsageError
from insight.model.layers import as_model, iter_layers
from insight.probe.capture import TRACE_LOCK, as_inputs, count_rows
from insight.probe.losses import output_items

__all__ = ["FUNCTIONS", "STAGES", "STAGE_TITLES", "XlaCompilation", "compile_model",
           "step_times", "compiler_error", "LEARNING_RATE"]

LEARNING_RATE = 0.01  # the train step's SGD update (returned, never applied)
_UNSUPPORTED = re.compile(r"(\w+) \(No registered '(\w+)' OpKernel for (\w+) devices"
                          r"[^{]*\{\{node ([^}]+)\}\}")


# -- compiling ---------------------------------------------------------------------------------

def _recording_scopes(model: Any, store: dict[str, list[str]]):
    """While active, each layer records the TensorFlow name scope its `call` runs in."""
    import tensorflow as tf

    from insight.probe.capture import wrapping_calls

    def wrap(path: str, original: Any) -> Any:
        def call(*args, **kwargs):
            scope = tf.get_current_name_scope()
            if scope not in store.setdefault(path, []):
                store[path].append(scope)
            return original(*args, **kwargs)
        return call

    return wrapping_calls(model, None, wrap)


def _loss_plan(model: Any, loaded: Any, y: Any, x: Any, rows: int) -> tuple[Any, list]:
    """Every output's loss, weighted as compiled (`insight.probe.losses.model_loss`, as the
    Gradients page and `insight profile --train` decide it), and each term's labels."""
    from insight.probe.losses import model_loss

    try:
        outputs = model.outputs or None
    except (AttributeError, ValueError):
        outputs = None
    if outputs is None:
        head = {k: v[:1] for k, v in x.items()} if isinstance(x, Mapping) else x[:1]
        outputs = model(head, training=False)
    plan = model_loss(loaded, y, outputs,
                      otherwise="or compile the forward pass (function='forward')")
    ys = plan.labels(y)
    for labels in ys:
        if len(labels) != rows:
            raise DataError("Labels and inputs have different numbers of rows.",
                            "Pass one label per input row.", f"rows x={rows}, y={len(labels)}")
    return plan, ys


def _functions(model: Any, function: str, terms: Any):
    """The Python function to compile for `function`; a train step's loss is the weighted sum
    of `terms` (one `OutputLoss` per output with a loss)."""
    import tensorflow as tf

    if function == "forward":
        def forward(x):
            return model(x, training=False)

        return forward
    trainable, other = list(model.trainable_variables), list(model.non_trainable_variables)

    def train_step(x, ys):
        weights = [v.value for v in trainable]
        state = [v.value for v in other]
        with tf.GradientTape() as tape:
            tape.watch(weights)
            outputs, new_state = model.stateless_call(weights, state, x, training=True)
            outs = [tf.cast(o, tf.float32) for _, o in output_items(outputs, model)]
            loss = tf.add_n([term.weight * tf.reduce_mean(term.fn(y, outs[term.index]))
                             for term, y in zip(terms, ys, strict=True)])
        grads = tape.gradient(loss, weights, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        grads = [tf.convert_to_tensor(g) for g in grads]  # Embedding: IndexedSlices -> dense
        return loss, [w - LEARNING_RATE * g for w, g in zip(weights, grads, strict=True)], \
            new_state

    return train_step


def compiler_error(exc: BaseException, function: str, model_name: str,
                   scopes: Mapping[str, list[str]] | None = None) -> CompileError:
    """The `CompileError` for an exception raised while XLA compiled `function`: the ops
    without an XLA kernel and the layers they sit in, when the message names them."""
    text = str(exc)
    found = _UNSUPPORTED.findall(text)
    by_scope = {s: p for p, ss in (scopes or {}).items() for s in ss}
    ops, where = [], []
    for op, _, _device, node in found:
        parts = node.split("/")
        layer = next((by_scope["/".join(parts[:k])] for k in range(len(parts), 0, -1)
                      if "/".join(parts[:k]) in by_scope), "")
        if op not in ops:
            ops.append(op)
            where.append(f"{op} (node {node}" + (f", layer {layer!r})" if layer else ")"))
    what = f"XLA cannot compile the {function} of {model_name!r}"
    if ops:
        layers = sorted({w.split("layer ")[1].rstrip(")") for w in where if "layer " in w})
        what += (f": {', '.join(ops)} {'has' if len(ops) == 1 else 'have'} no XLA kernel"
                 + (f" (in layer {', '.join(layers)})." if layers else "."))
        fix = ("XLA compiles only ops with an XLA kernel: string ops, tf.py_function and ops "
               "whose output shape depends on the data are not. Replace the op or move it "
               "out of the model (e.g. into the input pipeline); the other pages do not need "
               "XLA.")
        received = "unsupported ops: " + "; ".join(where)
    else:
        first = next((line.strip() for line in text.splitlines() if line.strip()), repr(exc))
        what += "."
        fix = ("The model may use an op XLA does not support, or shapes that depend on the "
               "data. The other pages do not need XLA.")
        received = f"{type(exc).__name__}: {first[:300]}"
    return CompileError(what, fix, received, ops=ops)


def compile_model(model: Any, x: Any, y: Any = None, *, function: str = "forward"
                  ) -> XlaCompilation:
    """Compile `function` of `model` for the batch `x` with XLA and read its HLO.

    Args:
        model: a `keras.Model` or an `insight.LoadedModel`.
        x: one batch of inputs (an array or `{input_name: array}`).
        y: labels for the batch; needed by `function="train"`. Defaults to `None`.
        function: `"forward"` (inference, `training=False`) or `"train"` (forward with
            `training=True`, loss, gradients and an SGD update, not applied). Defaults to
            `"forward"`.

    Returns:
        An `XlaCompilation` with the HLO before and after optimisation.

    Raises:
        UsageError: an unknown `function`, or `"train"` without labels.
        CompileError: XLA cannot compile the function (the ops and layers are named).
        DataError: labels that do not match the inputs.

    Example:

    >>> comp = compile_model(loaded, x[:32], y[:32], function="train")  # doctest: +SKIP
    >>> comp.loss  # doctest: +SKIP
    'sparse_categorical_crossentropy'
    """
    import tensorflow as tf

    if function not in FUNCTIONS:
        raise UsageError(f"Unknown function {function!r}. Functions are: "
                         f"{', '.join(FUNCTIONS)}.", "", f"function={function!r}")
    keras_model = as_model(model)
    name = str(getattr(keras_model, "name", "model"))
    x = as_inputs(x)
    rows = count_rows(x)
    args: list[Any] = [tf.nest.map_structure(tf.constant, x)]
    loss_name, terms = "", ()
    if function == "train":
        if y is None:
            raise UsageError("A train step needs labels, and this data has none.",
                             "Give a data file with labels (y), or compile the forward pass.",
                             "y=None")
        plan, ys = _loss_plan(keras_model, model, y, x, rows)
        terms, loss_name = plan.terms, plan.description.removeprefix("loss: ")
        args.append(tuple(tf.constant(labels) for labels in ys))
    python_fn = _functions(keras_model, function, terms)
    xla_fn = tf.function(python_fn, jit_compile=True)
    scopes: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}
    try:
        with TRACE_LOCK, _recording_scopes(keras_model, scopes):
            start = time.perf_counter()
            xla_fn.get_concrete_function(*args)
            seconds["trace"] = time.perf_counter() - start
        start = time.perf_counter()
        ir = xla_fn.experimental_get_compiler_ir(*args)
        text = {"hlo": ir(stage="hlo")}
        seconds["hlo"] = time.perf_counter() - start
        start = time.perf_counter()
        text["optimized_hlo"] = ir(stage="optimized_hlo")
        seconds["optimized_hlo"] = time.perf_counter() - start
    except InsightError:
        raise
    except Exception as exc:  # TF raises ValueError, OpError, NotImplementedError...
        raise compiler_error(exc, "train step" if function == "train" else "forward pass",
                             name, scopes) from exc
    start = time.perf_counter()
    modules = {stage: parse_hlo(t) for stage, t in text.items()}
    seconds["parse"] = time.perf_counter() - start
    classes = {p: type(layer).__name__ for p, layer, _ in iter_layers(keras_model)
               if type(layer).__name__ != "InputLayer"}
    return XlaCompilation(name, function, rows, text, modules,
                          {p: tuple(s) for p, s in scopes.items()}, classes, loss_name,
                          seconds, runnable=(python_fn, xla_fn, args))


# -- timing ------------------------------------------------------------------------------------

def _block(result: Any) -> None:
    import tensorflow as tf

    for t in tf.nest.flatten(result):
        if hasattr(t, "numpy"):
            t.numpy()


def step_times(comp: XlaCompilation, *, budget_s: float = 0.5, min_runs: int = 4,
               max_runs: int = 30) -> pd.DataFrame:
    """Time the compiled function against eager and `tf.function` (no XLA) on the same batch.

    Each mode is called once first (its trace and compilation: `first_call_s`). Then each
    runs in two blocks, in the order eager, graph, XLA, XLA, graph, eager, so a machine that
    gets busier or quieter meanwhile weighs on all three alike; a block starts with one untimed
    call (the first call after another mode runs slower), then runs until `budget_s / 2` is
    spent, at least `min_runs / 2` and at most `max_runs / 2` times. Runs of one mode in a row
    are what a training or serving loop does: alternating every call slows `tf.function` and
    XLA by up to 2x on CPU.

    Returns:
        One row per mode (`eager`, `graph`, `xla`): `mode`, `median_ms`, `min_ms`, `runs`,
        `first_call_s`, `speedup` (eager median / this median).
    """
    import tensorflow as tf

    if comp.runnable is None:
        raise UsageError("This compilation holds no function to time.",
                         "Time a compilation returned by compile_model.", "comp.runnable=None")
    python_fn, xla_fn, args = comp.runnable
    modes = {"eager": python_fn, "graph": tf.function(python_fn), "xla": xla_fn}
    first: dict[str, float] = {}
    for mode, fn in modes.items():
        start = time.perf_counter()
        _block(fn(*args))
        first[mode] = time.perf_counter() - start
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    least, most = max(1, (min_runs + 1) // 2), max(1, max_runs // 2)
    for block in (list(modes), list(modes)[::-1]):
        for mode in block:
            fn, runs, spent = modes[mode], 0, 0.0
            _block(fn(*args))
            while runs < least or (spent < budget_s / 2 and runs < most):
                start = time.perf_counter()
                _block(fn(*args))
                times[mode].append(time.perf_counter() - start)
                spent += times[mode][-1]
                runs += 1
    frame = pd.DataFrame([{"mode": mode, "median_ms": float(np.median(t)) * 1e3,
                           "min_ms": float(np.min(t)) * 1e3, "runs": len(t),
                           "first_call_s": first[mode]} for mode, t in times.items()])
    frame["speedup"] = frame.loc[0, "median_ms"] / frame["median_ms"]
    return frame
