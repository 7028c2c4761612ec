"""A Keras model config walked for what loading it would run or need.

`scan_config(config)` visits every object reference in a parsed config (`config.json` of a
`.keras` archive, the `model_config` attribute of a legacy `.h5` file) at every depth and
sorts out what the loader must refuse or ask about: Lambda layers and Python lambdas, custom
or registered classes, functions from modules outside Keras, and layers that load code from
elsewhere. It only reads the JSON: nothing is deserialized.

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

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConfigScan", "ObjectRef", "is_keras_module", "scan_config"]

# Keras' own serialization markers, not classes.
_MARKERS = {
    "__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__typespec__", "__tuple__",
    "__ellipsis__", "__slice__", "__list__", "__dict__", "__dtype__",
}
# Classes that load code or files from elsewhere even in safe mode.
_CODE_LOADING_CLASSES = {"TFSMLayer"}


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


@dataclass(frozen=True)
class ObjectRef:
    """One class or function the model config refers to.

    Attributes:
        where: the layer it belongs to (a path such as `"backbone/conv1"`).
        class_name: the config's `class_name`.
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


@dataclass
class ConfigScan:
    """What a model config refers to, sorted by what loading it would need.

    Attributes:
        model_class: the top-level class (`"Sequential"`, `"Functional"`, a subclass name).
        layer_count: number of layers in the config at every depth; `None` when the config
            does not list them (subclassed models).
        lambda_layers: layers holding Python bytecode: Lambda layers, and layers with a
            Python lambda as an argument (an activation, an initializer).
        custom_objects: classes that are neither built into Keras nor markers.
        foreign_functions: functions referenced from modules outside Keras (`builtins.print`).
        code_loading_layers: layers that load code from elsewhere (`TFSMLayer`).
    """

    model_class: str | None = None
    layer_count: int | None = None
    lambda_layers: list[str] = field(default_factory=list)
    custom_objects: list[ObjectRef] = field(default_factory=list)
    foreign_functions: list[ObjectRef] = field(default_factory=list)
    code_loading_layers: list[str] = field(default_factory=list)


def scan_config(config: dict[str, Any]) -> ConfigScan:
    """Walk a parsed model config for Lambda layers, custom classes and foreign references.

    Args:
        config: the model config as parsed JSON (`{"class_name": ..., "config": ...}`).

    Returns:
        A `ConfigScan`; layers are named by their path from the model (`"backbone/conv1"`),
        references at the top level by `"(model)"`.

    Example:

    >>> scan_config({"class_name": "my_package>Net", "config": {}}).custom_objects[0].qualified
    'my_package>Net'
    """
    scan = ConfigScan(model_class=config.get("class_name"))
    counter = [0]
    saw_layers = _walk(config, "", scan, counter)
    scan.layer_count = counter[0] if saw_layers else None
    return scan


def _walk(node: Any, where: str, scan: ConfigScan, counter: list[int]) -> bool:
    """Visit every object reference in a config; returns whether a layer list was seen."""
    saw_layers = False
    if isinstance(node, list):
        for item in node:
            saw_layers |= _walk(item, where, scan, counter)
        return saw_layers
    if not isinstance(node, dict):
        return False
    class_name = node.get("class_name")
    if isinstance(class_name, str):
        _classify(node, class_name, where, scan)
    for key, value in node.items():
        if key == "layers" and isinstance(value, list):
            saw_layers = True
            for layer in value:
                if not isinstance(layer, dict):
                    continue
                counter[0] += 1
                name = layer.get("name") or (layer.get("config") or {}).get("name") or "?"
                saw_layers |= _walk(layer, f"{where}/{name}" if where else str(name),
                                    scan, counter)
        elif key != "inbound_nodes":
            saw_layers |= _walk(value, where, scan, counter)
    return saw_layers


def _classify(node: dict[str, Any], class_name: str, where: str, scan: ConfigScan) -> None:
    if class_name in _MARKERS:
        return
    module = node.get("module")
    registered = node.get("registered_name")
    ref = ObjectRef(where or "(model)", class_name, module, registered)
    if class_name == "Lambda":
        scan.lambda_layers.append(where or "(model)")
        return
    if class_name == "__lambda__":  # a Python lambda anywhere: an activation, a loss, ...
        if (where or "(model)") not in scan.lambda_layers:
            scan.lambda_layers.append(where or "(model)")
        return
    if class_name in _CODE_LOADING_CLASSES:
        scan.code_loading_layers.append(where or "(model)")
        return
    if isinstance(module, str) and not is_keras_module(module):
        if class_name == "function":
            scan.foreign_functions.append(
                ObjectRef(where or "(model)", str(node.get("config")), module, registered))
        else:
            scan.custom_objects.append(ref)
        return
    if (isinstance(registered, str) and ">" in registered) or ">" in class_name:
        scan.custom_objects.append(ref)
        return
    if module is None and "module" in node and registered not in (None, class_name):
        scan.custom_objects.append(ref)
