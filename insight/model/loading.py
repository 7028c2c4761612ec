"""Safe loading of any Keras artifact into a `LoadedModel`.

`load_model` runs the static preflight first (`insight.preflight`), enforces the safety rules
on what it found, and only then hands the file to Keras, always with `compile=False` and, by
default, `safe_mode=True` — also for legacy `.h5` files, which older Keras loaded unsafely.
Keras' own errors are translated into `insight.errors` with the true cause.

Example:

>>> import insight
>>> loaded = insight.load_model("sample_models/digits_cnn/model.keras")  # doctest: +SKIP
>>> loaded.format, loaded.model.name
('keras', 'digits_cnn')
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from insight.errors import CustomObjectError, InsightError, ModelLoadError, UnsafeModelError
from insight.model import keras_phases, lockstep
from insight.model.fetched import fetch_model, fetched_from, named_as
from insight.model.keras_errors import UNSAFE_HINT
from insight.model.preflight import Preflight, preflight
from insight.model.samples import is_bundled

if TYPE_CHECKING:
    from insight.model.sandbox import LoadLimits

__all__ = ["LoadedModel", "load_model", "load_preflighted", "load_custom_objects",
           "check_safety"]

_UNSAFE_HINT = UNSAFE_HINT

# What a SavedModel rules out, and why; pages show these instead of an empty panel.
SAVEDMODEL_LIMITS = {
    "layers": "a SavedModel is a TensorFlow graph: its Keras layers are not kept",
    "activations": "per-layer activations need the Keras layers, which a SavedModel lacks",
    "gradients": "per-layer gradients need the Keras layers, which a SavedModel lacks",
    "embeddings of inner layers": "only the signature's outputs can be projected",
    "XLA view by layer": "HLO cannot be mapped back to layers that are not there",
}


@dataclass
class LoadedModel:
    """A model loaded by insight, with what was learned about its file.

    Attributes:
        model: the `keras.Model` (for a SavedModel, a functional wrapper around one
            `TFSMLayer`).
        preflight: the static report of the file.
        safe_mode: whether it was loaded in safe mode.
        custom_objects_file: the `--custom-objects` file that was run, if any.
        limits: capabilities this model lacks, each with its reason (empty for Keras files).
    """

    model: Any
    preflight: Preflight
    safe_mode: bool = True
    custom_objects_file: Path | None = None
    limits: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """The path the user gave, resolved (for a remote model: its copy in the cache)."""
        return self.preflight.path

    @property
    def source(self) -> str | None:
        """The `s3://`/`gs://` URL the model was fetched from, else `None`."""
        return self.preflight.source

    @property
    def format(self) -> str:
        """`"keras"`, `"h5"` or `"savedmodel"`."""
        return self.preflight.format

    @property
    def name(self) -> str:
        """The model's name."""
        return str(getattr(self.model, "name", self.path.stem))

    def __repr__(self) -> str:
        where = f"source={self.source!r}" if self.source else f"path={str(self.path)!r}"
        return (f"LoadedModel(name={self.name!r}, format={self.format!r}, {where}, "
                f"safe_mode={self.safe_mode})")


def check_safety(
    report: Preflight, *, safe_mode: bool = True, provided: Mapping[str, Any] | None = None
) -> None:
    """Refuse, in safe mode, a model whose loading would run code stored in the file.

    Args:
        report: the file's preflight.
        safe_mode: when `False`, nothing is refused. Defaults to `True`.
        provided: custom objects the user supplied; functions among them are allowed.
            Defaults to `None`.

    Raises:
        UnsafeModelError: Lambda layers, functions from modules outside Keras, references to
            modules that run commands or to Keras outside its modelling API, files read from
            outside the model, layers that load other models, or a SavedModel (a TensorFlow
            program, its risky ops named), in safe mode.
    """
    if not safe_mode:
        return
    shown = f"path={str(report.path)!r}"
    if report.format == "savedmodel":
        found = ""
        if report.risky_ops:
            found = ("Its graph holds ops that touch files or run Python: "
                     f"{', '.join(report.risky_ops)}. ")
        raise UnsafeModelError(
            found + "This is a TF SavedModel: a TensorFlow program that runs when loaded and "
            "may read or write files (TensorFlow's security policy: 'models are programs'). "
            "insight refuses it in safe mode.",
            _UNSAFE_HINT + " It then opens for inference only.",
            shown,
            names=report.risky_ops,
        )
    for refs, what in ((report.dangerous_references, "modules that run commands or code"),
                       (report.keras_internals, "Keras functions that are not model parts "
                        "(layers, activations, losses...)")):
        if refs:
            names = sorted({r.dotted for r in refs})
            raise UnsafeModelError(
                f"The model config names {what}: {', '.join(names)} "
                f"(in {', '.join(sorted({r.where for r in refs}))}). This is how crafted "
                "model files run code; insight refuses it in safe mode.",
                _UNSAFE_HINT, shown, names=names)
    if report.external_files:
        raise UnsafeModelError(
            "Loading the model would read files outside it: "
            f"{'; '.join(report.external_files[:5])}. insight refuses it in safe mode.",
            _UNSAFE_HINT, shown, names=report.external_files)
    if report.lambda_layers:
        raise UnsafeModelError(
            f"The model has {len(report.lambda_layers)} layer(s) holding Python bytecode "
            f"(Lambda layers or lambda functions) that would run on load: "
            f"{', '.join(report.lambda_layers)}. "
            "insight refuses them in safe mode.",
            _UNSAFE_HINT,
            shown,
            names=report.lambda_layers,
        )
    foreign = [r for r in report.foreign_functions if r.class_name not in (provided or {})]
    if foreign:
        names = sorted({r.qualified for r in foreign})
        raise UnsafeModelError(
            "The model config refers to functions outside Keras that would be imported on "
            f"load: {', '.join(names)} (in {', '.join(r.where for r in foreign)})."
            " This is how crafted model files run code.",
            _UNSAFE_HINT,
            shown,
            names=names,
        )
    if report.code_loading_layers:
        raise UnsafeModelError(
            "The model has layers that load another model from disk on load (TFSMLayer): "
            f"{', '.join(report.code_loading_layers)}.",
            _UNSAFE_HINT,
            shown,
            names=report.code_loading_layers,
        )


def load_custom_objects(source: str | Path | Mapping[str, Any] | None) -> dict[str, Any]:
    """Collect custom classes from a Python file (which runs it) or a mapping.

    The file is executed as a module, so every class it registers with
    `keras.saving.register_keras_serializable` becomes known to Keras; every
    class and function it defines is also returned by name.

    Args:
        source: a `.py` file path, a `{name: object}` mapping, or `None`.

    Returns:
        `{name: object}`, empty when `source` is `None`.

    Raises:
        CustomObjectError: the file does not exist, is not `.py`, or raises when run.
    """
    if source is None:
        return {}
    if isinstance(source, Mapping):
        return dict(source)
    file = Path(source).expanduser().resolve()
    shown = f"custom_objects={str(source)!r}"
    if not file.is_file() or file.suffix != ".py":
        raise CustomObjectError(
            "The custom objects file must be an existing .py file that defines or registers "
            "the model's custom classes.",
            "Pass --custom-objects path/to/layers.py.",
            shown,
        )
    mod_name = "insight_custom_" + re.sub(r"\W", "_", file.stem)
    spec = importlib.util.spec_from_file_location(mod_name, file)
    if spec is None or spec.loader is None:
        raise CustomObjectError("Python cannot import this file.", "", shown)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise CustomObjectError(
            f"Running the custom objects file failed: {type(exc).__name__}: {exc}.",
            "Fix the file so that `python FILE` runs without error.",
            shown,
        ) from exc
    return {
        name: obj for name, obj in vars(module).items()
        if not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == mod_name
    }


def _missing_custom(report: Preflight, provided: Mapping[str, Any]) -> list[str]:
    import keras

    registered = keras.saving.get_custom_objects()
    missing = []
    for ref in report.custom_objects:
        candidates = {ref.class_name, ref.qualified, ref.registered_name or ""}
        if any(c and (c in provided or c in registered) for c in candidates):
            continue
        missing.append(ref)
    return sorted({r.qualified if r.where == "(model)" else f"{r.qualified} (in {r.where})"
                   for r in missing})


def load_model(
    path: str | Path,
    *,
    safe_mode: bool = True,
    custom_objects: str | Path | Mapping[str, Any] | None = None,
    isolate: bool | LoadLimits = False,
) -> LoadedModel:
    """Load a Keras model file safely.

    Accepts a `.keras` file, a legacy `.h5`/`.hdf5` full model, a TF SavedModel directory
    (inference only, through `keras.layers.TFSMLayer`; needs `safe_mode=False`), or a
    directory holding one of those. Always `compile=False`.

    An `s3://` or `gs://` URL is first copied into insight's local cache
    (`insight.model.fetched.fetch_model`, once per object version) and the local copy is then
    loaded exactly as a local file: preflight, sandbox, safe mode. Keras never sees the URL.

    With `isolate`, the file is first loaded in a child process with a timeout, a memory
    limit and no secrets in its environment (`insight.model.sandbox`), and here only once it
    passed there: a file that crashes, hangs or exhausts memory costs the child. The CLI and
    the app always isolate (except the samples shipped with insight, which are part of it:
    `insight.model.samples.is_bundled`); use it for files from strangers.

    Args:
        path: where the model is: a local path, or an `s3://`/`gs://` URL.
        safe_mode: refuse anything that would run code stored in the file: Lambda layers,
            functions from outside Keras, SavedModels. Defaults to `True`.
        custom_objects: a `.py` file defining or registering the model's custom classes
            (it is executed), or a `{name: class}` mapping. Defaults to `None`.
        isolate: `True` (default limits: 60 s, 8 GB) or a `LoadLimits` to check the file
            in a child process first; needs `custom_objects` as a file. Defaults to `False`.

    Returns:
        A `LoadedModel`.

    Raises:
        ModelLoadError: the file is missing, empty, truncated or not a model.
        UnsupportedModelError: a URL of another scheme (`https://`, `hf://`), a
            weights-only file, an unknown format.
        StorageError: a remote model that cannot be fetched (missing, denied, dropped).
        UnsafeModelError: the file would run code, in safe mode.
        CustomObjectError: a custom class is not provided, or the file providing it fails.
        LoadLimitError: with `isolate`, the child ran past the time or memory limit.
        LoaderCrashError: with `isolate`, the child died loading the file.

    Example:

    >>> loaded = load_model("model.keras")  # doctest: +SKIP
    >>> loaded.model.summary()  # doctest: +SKIP
    >>> loaded = load_model("from_a_stranger.keras", isolate=True)  # doctest: +SKIP
    >>> loaded = load_model("s3://models/digits/model.keras", isolate=True)  # doctest: +SKIP
    """
    local = fetch_model(str(path))  # a URL becomes its local copy; a local path stays as is
    given = fetched_from(local) or str(path)  # a fetched copy (the app's) is named by its URL
    try:
        if isolate is not False and not is_bundled(local):
            return _load_isolated(local, safe_mode, custom_objects, isolate)
        return load_preflighted(preflight(local), safe_mode=safe_mode,
                                custom_objects=custom_objects)
    except InsightError as exc:
        named_as(exc, local, given)  # the user gave the URL: errors name it, not the cache
        raise


def load_preflighted(
    report: Preflight,
    *,
    safe_mode: bool = True,
    custom_objects: str | Path | Mapping[str, Any] | None = None,
    at: Callable[[str], None] | None = None,
) -> LoadedModel:
    """`load_model` for a file whose preflight is already at hand (read once, not twice).

    Args:
        report: `insight.preflight(path)` of the file.
        safe_mode: as `load_model`. Defaults to `True`.
        custom_objects: as `load_model`. Defaults to `None`.
        at: called with `"start"` before Keras reads the file, `"built"` once the model is
            built from its config and `"loaded"` once its weights are in (for formats read
            in one call, `"built"` and `"loaded"` come together at the end). The isolated
            loader uses it to keep each step behind the child's. Defaults to `None`.

    Returns:
        A `LoadedModel`.

    Raises:
        UnsafeModelError, CustomObjectError, ModelLoadError: as `load_model`.
    """
    path = report.path
    provided = load_custom_objects(custom_objects)  # the user's own file, run on request
    check_safety(report, safe_mode=safe_mode, provided=provided)
    co_file = None if custom_objects is None or isinstance(custom_objects, Mapping) \
        else Path(custom_objects).expanduser().resolve()
    at = at or _no_step
    if report.format == "savedmodel":
        at("start")
        model = _load_savedmodel(report)
        at("built")
        at("loaded")
        return LoadedModel(model, report, safe_mode, co_file, dict(SAVEDMODEL_LIMITS))
    missing = _missing_custom(report, provided)
    if missing:
        raise CustomObjectError(
            f"The model uses custom classes whose code is not in the file: {', '.join(missing)}.",
            "Pass the Python file that defines them: `insight serve MODEL --custom-objects "
            "layers.py` (it is executed, so only a file you trust).",
            f"path={str(path)!r}",
            names=missing,
        )
    model = keras_phases.load(report, provided, safe_mode, str(path), at)
    return LoadedModel(model, report, safe_mode, co_file)


def _no_step(_step: str) -> None:
    return None


def _load_isolated(path, safe_mode: bool, custom_objects, isolate) -> LoadedModel:
    """Each step here starts once the child has passed the same step within the limits, and
    runs while the child does the next one: the preflight while the child builds the model,
    then each Keras step (a variable created or assigned, `insight.model.lockstep`) once the
    child has run past it; where Keras lacks those steps, building the model while the child
    reads the weights and reading the weights while the child runs the forward pass."""
    from insight.model import sandbox
    from insight.model.sandbox import LoadLimits, start_check

    key = sandbox.passed_key(path, safe_mode, custom_objects)
    if sandbox.passed_before(key):  # these very bytes passed the child and loaded here once
        return load_preflighted(preflight(path), safe_mode=safe_mode,
                                custom_objects=custom_objects)
    pending = start_check(path, safe_mode=safe_mode, custom_objects=custom_objects,
                          limits=isolate if isinstance(isolate, LoadLimits) else None)
    pending.preflight_passed()
    report = preflight(path)
    import keras  # noqa: F401  overlaps the child's own start and load

    stepped = lockstep.available()
    done = 0

    def behind_child(step: str) -> None:
        if step == "start":
            pending.reached(1) if stepped else pending.model_built()
        elif step == "built" and not stepped:
            pending.weights_loaded()

    def next_step() -> None:  # the child has run the code up to our next step first
        nonlocal done
        done += 1
        pending.reached(done + 1)

    try:
        with lockstep.stepping(next_step) if stepped else contextlib.nullcontext():
            loaded = load_preflighted(report, safe_mode=safe_mode,
                                      custom_objects=custom_objects, at=behind_child)
    except Exception:
        if pending.failure is None:
            raise
    if pending.failure is not None:  # the child's refusal, raised (and wrapped) inside Keras
        pending.failure.__context__ = pending.failure.__cause__ = None
        raise pending.failure
    pending.result()  # the forward pass's verdict: the model is dropped if it failed
    sandbox.remember_passed(key)
    return loaded


def _load_savedmodel(report: Preflight):
    import keras

    sigs = report.signatures
    endpoint = next((e for e in ("serve", "serving_default") if e in sigs), None)
    endpoint = endpoint or next(iter(sigs), None)
    if endpoint is None:
        raise ModelLoadError(
            "The SavedModel has no signature to call.",
            "Export it with model.export(path) so it gets a 'serve' endpoint.",
            f"path={str(report.path)!r}",
        )
    try:
        layer = keras.layers.TFSMLayer(str(report.model_file), call_endpoint=endpoint,
                                       name="saved_model")
        inputs = {
            k: keras.Input(shape=tuple(v["shape"][1:]) if v["shape"] else (None,),
                           dtype=v["dtype"], name=k)
            for k, v in sigs[endpoint]["inputs"].items()
        }
        args = next(iter(inputs.values())) if len(inputs) == 1 else inputs
        outputs = layer(args)
        return keras.Model(args, outputs, name=report.path.name)
    except Exception as exc:
        raise ModelLoadError(
            f"TensorFlow could not load the SavedModel through TFSMLayer "
            f"(endpoint {endpoint!r}): {type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
            "Check that it was exported with model.export() or tf.saved_model.save().",
            f"path={str(report.path)!r}",
        ) from exc
