"""A Keras model config walked for what loading it would run or need.

`scan_config(config)` visits every object reference in a parsed config (`config.json` of a
`.keras` archive, the `model_config` attribute of a legacy `.h5` file) at every depth —
nested models inside layers, and the call arguments stored in `inbound_nodes` — and sorts out
what the loader must refuse or ask about: Lambda layers and Python lambdas, references to
modules that run commands or code (`os`, `subprocess`, `builtins.eval`...), references into
Keras outside its modelling API (`keras.config.enable_unsafe_deserialization`,
`keras.utils.get_file`), functions from other modules, custom classes, layers that load code
or read files from elsewhere, and dimensions no real layer declares. It only reads the JSON:
nothing is deserialized, and the walk is iterative with a depth limit (a config nested ten
thousand levels deep is refused, not a `RecursionError`).

Example:

>>> from insight.model.config_scan import scan_config
>>> config = {"class_name": "Sequential", "config": {"layers": [
...     {"class_name": "Dense", "module": "keras.layers", "config": {"name": "dense"}},
...     {"class_name": "Lambda", "module": "keras.layers", "config": {"name": "double"}}]}}
>>> scan = scan_config(config)
>>> scan.model_class, scan.layer_count, scan.lambda_layers
('Sequential', 2, ['double'])
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field
from typing import Any

from insight.errors import ModelLoadError

__all__ = ["ConfigScan", "ObjectRef", "MAX_CONFIG_DEPTH", "MAX_DIMENSION", "is_keras_module",
           "scan_config"]

MAX_CONFIG_DEPTH = 100  # a model nested in a model nested ... 3 deep is ~25 levels
MAX_DIMENSION = 10**8  # no layer insight can show has a dimension of 100 million

# Keras' own serialization markers, not classes.
_MARKERS = {
    "__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__typespec__", "__tuple__",
    "__ellipsis__", "__slice__", "__list__", "__dict__", "__dtype__",
}
# Classes that load code or files from elsewhere even in safe mode.
_CODE_LOADING_CLASSES = {"TFSMLayer"}
# Layers whose `vocabulary` may be a path that is read when the layer is built.
_VOCABULARY_CLASSES = {"TextVectorization", "StringLookup", "IntegerLookup"}
# Modules whose functions run commands, code, or touch files and the network: no model config
# has a reason to name them (ModelScan's unsafe globals, and more).
DANGEROUS_MODULES = frozenset({
    "os", "nt", "posix", "subprocess", "sys", "builtins", "__builtin__", "importlib", "imp",
    "runpy", "shutil", "socket", "pickle", "cPickle", "_pickle", "marshal", "dill", "joblib",
    "shelve", "ctypes", "pty", "code", "codeop", "commands", "popen2", "platform", "signal",
    "multiprocessing", "threading", "asyncio", "webbrowser", "http", "httplib", "urllib",
    "urllib2", "requests", "aiohttp", "ftplib", "smtplib", "telnetlib", "tempfile", "pathlib",
    "io", "glob", "zipfile", "tarfile", "gc", "inspect", "types", "functools", "operator",
    "pydoc", "timeit", "cProfile", "profile", "pdb", "bdb", "trace", "linecache", "site",
    "sysconfig", "distutils", "setuptools", "pip", "numpy.f2py", "tensorflow.io",
})
# Python builtins that run code or reach outside (`builtins.print` is "only" foreign).
_DANGEROUS_BUILTINS = frozenset({
    "eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr",
    "breakpoint", "input", "globals", "locals", "vars", "exit", "quit", "help", "memoryview",
})
# Keras' modelling API: where the classes of a model config live (`keras.src.` spelled as
# `keras.`); anything else in Keras (callbacks, utils, saving, config, backend, applications,
# export...) is not a model part and is reported.
_KERAS_CLASS_MODULES = (
    "keras", "keras.layers", "keras.models", "keras.initializers", "keras.regularizers",
    "keras.constraints", "keras.losses", "keras.metrics", "keras.optimizers",
    "keras.dtype_policies", "keras.mixed_precision", "keras.quantizers", "keras.random",
    "keras.activations", "keras.ops", "keras.backend.common.variables",
)
# ... and where its functions may come from (an activation, a loss, a metric, an op).
_KERAS_FUNCTION_MODULES = ("keras.activations", "keras.losses", "keras.metrics", "keras.ops")
# Config keys that declare a size (a weight's dimension, a vocabulary, a shape).
_SIZE_KEYS = frozenset({
    "units", "filters", "output_dim", "input_dim", "num_heads", "key_dim", "value_dim",
    "max_tokens", "num_tokens", "vocabulary_size", "intermediate_dim", "hidden_dim",
    "embedding_dim", "depth_multiplier", "batch_shape", "batch_input_shape", "shape",
    "input_shape", "target_shape", "output_shape", "kernel_size", "pool_size", "n", "dims",
    "num_bins", "output_sequence_length", "output_mode_dim", "size", "length", "num_classes",
})
_SPLIT = re.compile(r"[.>]")


def is_keras_module(module: str) -> bool:
    """Whether `module` (a config's `module` field) is Keras itself.

    Args:
        module: a dotted module name such as `"keras.layers"` or `"my_package.layers"`.

    Returns:
        `True` for `keras` and its submodules.

    Example:

    >>> is_keras_module("keras.layers"), is_keras_module("keras_hub.layers")
    (True, False)
    """
    return module == "keras" or module.startswith("keras.")


def is_dangerous_name(name: str | None) -> bool:
    """Whether a dotted or registered name starts with a module of `DANGEROUS_MODULES`.

    Example:

    >>> is_dangerous_name("os.system"), is_dangerous_name("subprocess>Popen")
    (True, True)
    >>> is_dangerous_name("my_package>Scale"), is_dangerous_name("osmosis.layers")
    (False, False)
    """
    if not isinstance(name, str) or not name:
        return False
    parts = _SPLIT.split(name)
    return parts[0] in DANGEROUS_MODULES or ".".join(parts[:2]) in DANGEROUS_MODULES


def _in_modules(module: str, allowed: tuple[str, ...]) -> bool:
    module = "keras." + module[len("keras.src."):] if module.startswith("keras.src.") else module
    return any(module == a or (a != "keras" and module.startswith(a + ".")) for a in allowed)


@dataclass(frozen=True)
class ObjectRef:
    """One class or function the model config refers to.

    Attributes:
        where: the layer it belongs to (a path such as `"backbone/conv1"`).
        class_name: the config's `class_name` (for a function, the function's name).
        module: the config's `module`, or `None` (legacy `.h5` files have none).
        registered_name: e.g. `"my_package>Scale"` for a registered custom class.
    """

    where: str
    class_name: str
    module: str | None = None
    registered_name: str | None = None

    @property
    def qualified(self) -> str:
        """The name a user would search their code for."""
        if self.registered_name and ">" in self.registered_name:
            return self.registered_name
        if self.module and not is_keras_module(self.module):
            return f"{self.module}.{self.class_name}"
        return self.class_name

    @property
    def dotted(self) -> str:
        """`module.name`, the full import path (`keras.utils.get_file`)."""
        if is_dangerous_name(self.registered_name) and not is_dangerous_name(self.module):
            return str(self.registered_name)
        return f"{self.module}.{self.class_name}" if self.module else self.class_name


@dataclass
class ConfigScan:
    """What a model config refers to, sorted by what loading it would need.

    Attributes:
        model_class: the top-level class (`"Sequential"`, `"Functional"`, a subclass name).
        layer_count: number of layers in the config at every depth; `None` when the config
            does not list them (subclassed models).
        lambda_layers: layers holding Python bytecode: Lambda layers, and layers with a
            Python lambda as an argument (an activation, an initializer, a call argument).
        custom_objects: classes that are neither built into Keras nor markers.
        foreign_functions: functions referenced from modules outside Keras (`builtins.print`).
        dangerous_references: names of modules that run commands or code (`os.system`,
            `subprocess.Popen`, `builtins.eval`), as a module, class, function or registered
            name.
        keras_internals: references into Keras outside its modelling API
            (`keras.config.enable_unsafe_deserialization`, `keras.utils.get_file`).
        code_loading_layers: layers that load code from elsewhere (`TFSMLayer`).
        file_references: files the model would read on load (a vocabulary given as a path).
        oversized: layers declaring a dimension over `MAX_DIMENSION` (`"big: units=10**12"`).
    """

    model_class: str | None = None
    layer_count: int | None = None
    lambda_layers: list[str] = field(default_factory=list)
    custom_objects: list[ObjectRef] = field(default_factory=list)
    foreign_functions: list[ObjectRef] = field(default_factory=list)
    dangerous_references: list[ObjectRef] = field(default_factory=list)
    keras_internals: list[ObjectRef] = field(default_factory=list)
    code_loading_layers: list[str] = field(default_factory=list)
    file_references: list[str] = field(default_factory=list)
    oversized: list[str] = field(default_factory=list)


def scan_config(config: dict[str, Any], shown: str = "") -> ConfigScan:
    """Walk a parsed model config for everything loading it would run, import or read.

    Args:
        config: the model config as parsed JSON (`{"class_name": ..., "config": ...}`).
        shown: the path as the user gave it, for the error message. Defaults to `""`.

    Returns:
        A `ConfigScan`; layers are named by their path from the model (`"backbone/conv1"`),
        references at the top level by `"(model)"`, those in a layer's call arguments by
        `"layer (call arguments)"`.

    Raises:
        ModelLoadError: the config is nested deeper than `MAX_CONFIG_DEPTH` levels.

    Example:

    >>> scan_config({"class_name": "my_package>Net", "config": {}}).custom_objects[0].qualified
    'my_package>Net'
    >>> fn = {"module": "os", "class_name": "function", "config": "system"}
    >>> scan_config({"class_name": "Dense", "config": {"activation": fn}}
    ...             ).dangerous_references[0].dotted
    'os.system'
    """
    model_class = config.get("class_name") if isinstance(config, dict) else None
    scan = ConfigScan(model_class=model_class if isinstance(model_class, str) else None)
    layers, saw_layers = 0, False
    # (node, where, depth, inside call arguments): pre-order, children pushed reversed.
    stack: list[tuple[Any, str, int, bool]] = [(config, "", 1, False)]
    while stack:
        node, where, depth, in_args = stack.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise ModelLoadError(
                f"The model config is nested more than {MAX_CONFIG_DEPTH} levels deep; no "
                "Keras model needs that many (a crafted file meant to exhaust the loader's "
                "recursion).",
                "Check where the file comes from.",
                f"path={shown!r}" if shown else "",
            )
        if isinstance(node, list):
            stack.extend((item, where, depth + 1, in_args) for item in reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        class_name = node.get("class_name")
        if isinstance(class_name, str):
            _classify(node, class_name, where or "(model)", scan)
        children: list[tuple[Any, str, int, bool]] = []
        for key, value in node.items():
            _check_size(key, value, where or "(model)", scan)
            if key == "layers" and isinstance(value, list) and not in_args:
                saw_layers = True
                for layer in value:
                    if not isinstance(layer, dict):
                        children.append((layer, where, depth + 1, in_args))
                        continue
                    layers += 1
                    name = _layer_name(layer)
                    children.append((layer, f"{where}/{name}" if where else name, depth + 1,
                                     False))
            elif key == "inbound_nodes":
                children.append((value, f"{where or '(model)'} (call arguments)", depth + 1,
                                 True))
            else:
                children.append((value, where, depth + 1, in_args))
        stack.extend(reversed(children))
    scan.layer_count = layers if saw_layers else None
    return scan


def _layer_name(layer: dict[str, Any]) -> str:
    name = layer.get("name")
    if not isinstance(name, str):
        inner = layer.get("config")
        name = inner.get("name") if isinstance(inner, dict) else None
    return name if isinstance(name, str) and name else "?"


def _check_size(key: str, value: Any, where: str, scan: ConfigScan) -> None:
    if key not in _SIZE_KEYS:
        return
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not v <= MAX_DIMENSION:
            shown = f"{v:.3g}" if isinstance(v, float) else f"{v:,}"
            scan.oversized.append(f"{where}: {key}={shown}")
            return


def _classify(node: dict[str, Any], class_name: str, where: str, scan: ConfigScan) -> None:
    if class_name in _MARKERS:
        return
    module = node.get("module")
    module = module if isinstance(module, str) else None
    registered = node.get("registered_name")
    registered = registered if isinstance(registered, str) else None
    is_function = class_name == "function"
    fn_name = node.get("config") if is_function else None
    name = fn_name if isinstance(fn_name, str) else class_name
    ref = ObjectRef(where, name, module, registered)
    if class_name == "Lambda" or class_name == "__lambda__":  # bytecode: a layer or a lambda
        if where not in scan.lambda_layers:
            scan.lambda_layers.append(where)
        return
    if class_name in _CODE_LOADING_CLASSES:
        scan.code_loading_layers.append(where)
        return
    if class_name in _VOCABULARY_CLASSES:
        inner = node.get("config")
        vocab = inner.get("vocabulary") if isinstance(inner, dict) else None
        if isinstance(vocab, str):
            scan.file_references.append(f"{where} reads the vocabulary file {vocab!r}")
    if module == "builtins" and is_function and not is_dangerous_name(name):
        # Keras saves its own losses and activations as builtins.<name> and looks the name
        # up among its own modules; a Python builtin there (print, eval) is not Keras'.
        if name in vars(builtins):
            target = (scan.dangerous_references if name in _DANGEROUS_BUILTINS
                      else scan.foreign_functions)
            target.append(ref)
        return
    if any(is_dangerous_name(n) for n in (module, registered, class_name, fn_name)):
        scan.dangerous_references.append(ref)
        return
    if module is not None and is_keras_module(module):
        allowed = _KERAS_FUNCTION_MODULES if is_function else _KERAS_CLASS_MODULES
        if not _in_modules(module, allowed):
            scan.keras_internals.append(ref)
            return
    elif module is not None:
        (scan.foreign_functions if is_function else scan.custom_objects).append(ref)
        return
    if (registered is not None and ">" in registered) or ">" in class_name:
        scan.custom_objects.append(ref)
        return
    if module is None and "module" in node and registered not in (None, class_name):
        scan.custom_objects.append(ref)
