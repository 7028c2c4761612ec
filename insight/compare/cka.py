"""Linear centred kernel alignment (CKA) between layers' representations.

CKA (Kornblith et al., ICML 2019, "Similarity of Neural Network Representations Revisited")
says how similar two representations of the same inputs are, from 0 (unrelated) to 1 (the
same up to a rotation and a scale): it is invariant to orthogonal transforms and isotropic
scaling of either side, not to arbitrary invertible linear maps, so it compares layers of
different widths.

- `linear_cka`: the full-batch value, on every row at once (features centred).
- `MinibatchCKA`: the estimator of Nguyen et al. (ICLR 2021, "Do Wide and Deep Networks Learn
  the Same Things?"): per minibatch, the *unbiased* HSIC estimator (Song et al., 2012) of
  every pair of layers is accumulated, and CKA is their ratio at the end. Only one
  minibatch's Gram matrices (batch x batch per layer) are held, so memory stays bounded
  for any number of inputs; being unbiased, the average does not drift with the batch size.
- `cka_matrix`: every layer of one model against every layer of another on the same inputs,
  batch by batch. Each batch runs one compiled forward pass per model that returns the
  layers' Gram matrices instead of their outputs, so activations never leave the graph.

Example:

>>> import numpy as np
>>> x = np.random.default_rng(0).normal(size=(100, 8))
>>> round(linear_cka(x, 3 * x), 6)
1.0
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from insight.errors import DataError, UsageError

__all__ = ["linear_cka", "cka", "MinibatchCKA", "cka_matrix", "gram", "unbiased_hsic"]

# The unbiased HSIC estimator divides by n (n - 3): it needs at least 4 rows per minibatch.
MIN_BATCH = 4


def _rows(x: Any) -> np.ndarray:
    """`x` as a float64 `[n, features]` array (trailing dims flattened)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        raise UsageError("A representation needs one row per input.",
                         "Pass an array of shape [n, features, ...].", "a scalar")
    return arr.reshape(arr.shape[0], -1)


def linear_cka(x: Any, y: Any) -> float:
    """Linear CKA of two representations of the same `n` inputs, on all rows at once.

    Args:
        x: `[n, ...]` array (trailing dims are flattened into features).
        y: `[n, ...]` array, the same `n`.

    Returns:
        A float in [0, 1]; `nan` when either side is constant.

    Raises:
        DataError: `x` and `y` hold different numbers of rows.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(50, 4))
    >>> q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    >>> round(linear_cka(x, x @ q), 6)
    1.0
    """
    a, b = _rows(x), _rows(y)
    if a.shape[0] != b.shape[0]:
        raise DataError("CKA compares two representations of the same inputs.",
                        "Pass arrays with the same number of rows.",
                        f"{a.shape[0]} and {b.shape[0]} rows")
    a = a - a.mean(0)
    b = b - b.mean(0)
    n = a.shape[0]
    if a.shape[1] * b.shape[1] <= n * n:  # feature space is the smaller one
        cross = np.sum((b.T @ a) ** 2)
        norm = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
    else:
        k, l_ = a @ a.T, b @ b.T
        cross = np.sum(k * l_)
        norm = np.linalg.norm(k) * np.linalg.norm(l_)
    return float(cross / norm) if norm > 0 else float("nan")


def cka(acts_a: Any, acts_b: Any) -> Any:
    """Linear CKA of two representations, or of every pair of two sets of them.

    Args:
        acts_a: an `[n, ...]` array, or `{layer: [n, ...] array}` (as `insight.activations`
            returns).
        acts_b: the same kind, of the same `n` inputs.

    Returns:
        A float for two arrays; for two mappings a `pandas.DataFrame` (A's layers as rows,
        B's as columns), each value `linear_cka` on all rows at once.

    Example:

    >>> x = np.random.default_rng(0).normal(size=(20, 3))
    >>> cka({"a": x}, {"b": x, "c": -x}).round(6).to_numpy().tolist()
    [[1.0, 1.0]]
    """
    from collections.abc import Mapping

    import pandas as pd

    if isinstance(acts_a, Mapping) != isinstance(acts_b, Mapping):
        raise UsageError("Pass two arrays or two {layer: array} mappings.", "",
                         f"{type(acts_a).__name__} and {type(acts_b).__name__}")
    if not isinstance(acts_a, Mapping):
        return linear_cka(acts_a, acts_b)
    values = [[linear_cka(a, b) for b in acts_b.values()] for a in acts_a.values()]
    return pd.DataFrame(values, index=list(acts_a), columns=list(acts_b), dtype=float)


def gram(x: Any) -> np.ndarray:
    """The linear-kernel Gram matrix `x x^T` of a `[n, ...]` array (features centred), float64.

    >>> gram(np.eye(3)).shape
    (3, 3)
    """
    a = _rows(x)
    a = a - a.mean(0)
    return a @ a.T


def _hsic_parts(grams: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For `[m, n, n]` Gram matrices: the diagonal-free matrices flattened `[m, n*n]`, their
    row sums `[m, n]` and their totals `[m]`: everything the unbiased HSIC of any pair needs."""
    k = np.array(grams, dtype=np.float64, copy=True)
    n = k.shape[-1]
    idx = np.arange(n)
    k[:, idx, idx] = 0.0
    rows = k.sum(-1)
    return k.reshape(len(k), n * n), rows, rows.sum(-1)


def _hsic_pairs(a: tuple, b: tuple, n: int) -> np.ndarray:
    """Unbiased HSIC of every pair (Song et al. 2012, eq. 5), from `_hsic_parts` of each side:
    [tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3))."""
    flat_a, rows_a, tot_a = a
    flat_b, rows_b, tot_b = b
    trace = flat_a @ flat_b.T  # K~ and L~ are symmetric: tr(K~L~) = sum(K~ * L~)
    totals = np.outer(tot_a, tot_b) / ((n - 1) * (n - 2))
    cross = 2.0 / (n - 2) * (rows_a @ rows_b.T)
    return (trace + totals - cross) / (n * (n - 3))


def unbiased_hsic(k: np.ndarray, l_: np.ndarray) -> float:
    """The unbiased HSIC estimator of two `n x n` Gram matrices (n >= 4).

    >>> g = gram(np.random.default_rng(0).normal(size=(10, 3)))
    >>> unbiased_hsic(g, g) > 0
    True
    """
    n = int(np.shape(k)[0])
    return float(_hsic_pairs(_hsic_parts(np.asarray(k)[None]),
                             _hsic_parts(np.asarray(l_)[None]), n)[0, 0])


class MinibatchCKA:
    """Linear CKA of every layer of A against every layer of B, accumulated minibatch by
    minibatch with the unbiased HSIC estimator (Nguyen et al., 2021).

    CKA(i, j) = sum_batches HSIC(K_i, L_j) / sqrt(sum HSIC(K_i, K_i) * sum HSIC(L_j, L_j)).

    Args:
        n_a: number of layers (representations) on side A.
        n_b: number of layers on side B.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> acc = MinibatchCKA(1, 1)
    >>> for _ in range(4):
    ...     x = rng.normal(size=(32, 5))
    ...     acc.update([x], [2 * x])
    >>> round(float(acc.matrix()[0, 0]), 6)
    1.0
    """

    def __init__(self, n_a: int, n_b: int) -> None:
        self.n_a, self.n_b = int(n_a), int(n_b)
        self.cross = np.zeros((self.n_a, self.n_b))
        self.self_a = np.zeros(self.n_a)
        self.self_b = np.zeros(self.n_b)
        self.batches = 0
        self.rows = 0

    def update(self, acts_a: list[np.ndarray], acts_b: list[np.ndarray]) -> None:
        """Add one minibatch: every layer's activations of the same rows, on both sides.

        Raises:
            DataError: the wrong number of layers, different row counts, or fewer than 4 rows.
        """
        self.update_grams([gram(a) for a in acts_a], [gram(b) for b in acts_b])

    def update_grams(self, grams_a: Any, grams_b: Any) -> None:
        """Add one minibatch given as Gram matrices (`[n_a, n, n]` and `[n_b, n, n]`), as
        `cka_matrix` computes them inside the model's graph.

        Raises:
            DataError: the wrong number of layers, different row counts, or fewer than 4 rows.
        """
        ga, gb = np.asarray(grams_a, np.float64), np.asarray(grams_b, np.float64)
        if len(ga) != self.n_a or len(gb) != self.n_b:
            raise DataError("A minibatch must hold every layer of both sides.",
                            f"Pass {self.n_a} arrays for A and {self.n_b} for B.",
                            f"{len(ga)} and {len(gb)}")
        n = ga.shape[-1]
        if gb.shape[-1] != n:
            raise DataError("Both sides of a minibatch must be the same inputs.",
                            "Pass the same rows through both models.",
                            f"{n} and {gb.shape[-1]} rows")
        if n < MIN_BATCH:
            return  # too few rows for the unbiased estimator (a dataset's last scrap)
        pa, pb = _hsic_parts(ga), _hsic_parts(gb)
        self.cross += _hsic_pairs(pa, pb, n)
        self.self_a += _self_hsic(pa, n)
        self.self_b += _self_hsic(pb, n)
        self.batches += 1
        self.rows += n

    def matrix(self) -> np.ndarray:
        """`[n_a, n_b]` CKA so far (`nan` where a layer was constant, or before any batch)."""
        denom = np.sqrt(np.outer(np.clip(self.self_a, 0, None), np.clip(self.self_b, 0, None)))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(denom > 0, self.cross / denom, np.nan)
        return out


def _self_hsic(parts: tuple, n: int) -> np.ndarray:
    """HSIC(K_i, K_i) for every i, without the m x m cross product."""
    flat, rows, tot = parts
    trace = np.einsum("ij,ij->i", flat, flat)
    return (trace + tot**2 / ((n - 1) * (n - 2)) - 2.0 / (n - 2) *
            np.einsum("ij,ij->i", rows, rows)) / (n * (n - 3))


def _gram_function(model: Any, paths: list[str], x_example: Any):
    """A compiled `f(x) -> [len(paths), n, n]` of the layers' Gram matrices (features centred,
    float32), cached per model, layer set and input signature like the other probes."""
    import tensorflow as tf

    from insight.probe.capture import (
        COMPILED,
        TRACE_LOCK,
        first_output,
        input_spec,
        recording,
        signature_key,
    )

    key = ("cka_gram", tuple(paths), signature_key(x_example))
    cache = COMPILED.setdefault(model, {})
    if key in cache:
        return cache[key]
    wanted = set(paths)

    def run(x):
        store: dict[str, Any] = {}
        with recording(model, wanted, store):
            model(x, training=False)
        out = []
        for p in paths:
            a = tf.cast(first_output(store[p]), tf.float32)
            a = tf.reshape(a, (tf.shape(a)[0], -1))
            a = a - tf.reduce_mean(a, 0, keepdims=True)
            out.append(tf.matmul(a, a, transpose_b=True))
        return tf.stack(out)

    fn = tf.function(run, input_signature=[input_spec(x_example)], reduce_retracing=True)
    with TRACE_LOCK:
        fn.get_concrete_function()
    cache[key] = fn
    return fn


def cka_matrix(model_a: Any, model_b: Any, x: Any, *, layers_a: Iterable[str] | None = None,
               layers_b: Iterable[str] | None = None, batch_size: int = 128) -> Any:
    """Minibatch linear CKA of every chosen layer of A against every chosen layer of B.

    The inputs run batch by batch through both models; each batch leaves only its Gram
    matrices (`batch_size` squared per layer), so memory does not grow with `len(x)`.

    Args:
        model_a: a `keras.Model` or `LoadedModel`.
        model_b: another (or the same) one taking the same inputs.
        x: the inputs: an array, `{input_name: array}`, a list of arrays in `model.inputs`
            order, or an `insight.data.Dataset`.
        layers_a: layer paths of A; `None` for every layer. Defaults to `None`.
        layers_b: layer paths of B; `None` for every layer. Defaults to `None`.
        batch_size: rows per minibatch (at least 4; the estimator's variance falls with it).
            Defaults to `128`.

    Returns:
        A `pandas.DataFrame` `[layers of A] x [layers of B]` of CKA values.

    Raises:
        UsageError: an unknown layer, or `batch_size` below 4.
        DataError: fewer than 4 inputs, or inputs that do not fit a model.

    Example:

    >>> m = cka_matrix(loaded, loaded, x[:256])  # doctest: +SKIP
    >>> float(np.diag(m.to_numpy()).min()) > 0.999  # doctest: +SKIP
    True
    """
    import pandas as pd

    from insight.model.layers import as_model, resolve_layers
    from insight.probe.capture import input_batches

    if batch_size < MIN_BATCH:
        raise UsageError(f"CKA's unbiased estimator needs at least {MIN_BATCH} rows a batch.",
                         f"Pass batch_size >= {MIN_BATCH}.", f"batch_size={batch_size}")
    ka, kb = as_model(model_a), as_model(model_b)
    paths_a = resolve_layers(ka, layers_a)
    paths_b = resolve_layers(kb, layers_b)
    acc = MinibatchCKA(len(paths_a), len(paths_b))
    for xb in input_batches(x, batch_size, ka):
        ga = _gram_function(ka, paths_a, xb)(xb).numpy()
        gb = ga if kb is ka and paths_a == paths_b else _gram_function(kb, paths_b, xb)(xb).numpy()
        acc.update_grams(ga, gb)
    if acc.batches == 0:
        raise DataError(f"CKA needs at least {MIN_BATCH} inputs.", "Pass more rows.",
                        f"rows={acc.rows}")
    return pd.DataFrame(acc.matrix(), index=paths_a, columns=paths_b)
