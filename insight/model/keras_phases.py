"""A `.keras` archive loaded in two steps: the model from its config, then its weights.

`keras.saving.load_model` does both in one call. The isolated loader needs the seam between
them: the server may deserialize a file only once the sandboxed child has deserialized it
(that is where a `safe_mode` bypass would run), and may read its weights only once the child
has read them (that is where a crafted HDF5 file would crash h5py). With the seam, the
server builds the model while the child reads the weights, and reads the weights while the
child runs the first forward pass, instead of starting only when the child has finished.

The two steps are Keras' own (`keras.src.saving.saving_lib`: `_model_from_config`, then the
weights and assets stores and `_load_state`, as `_load_model_from_fileobj` does); where a
Keras release no longer has them, `phased()` is `False` and the caller loads in one call.

Example:

>>> from insight.model.keras_phases import build, load_weights, phased
>>> path = "sample_models/digits_cnn/model.keras"
>>> if phased():  # doctest: +SKIP
...     model = build(path, custom_objects=None, safe_mode=True)
...     load_weights(model, path)
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from insight.model.keras_errors import translate

if TYPE_CHECKING:
    from insight.model.preflight import Preflight

__all__ = ["phased", "build", "load_weights", "load"]

_NEEDED = ("_model_from_config", "_load_state", "_raise_loading_failure", "H5IOStore",
           "NpzIOStore", "DiskIOStore", "_CONFIG_FILENAME", "_VARS_FNAME_H5",
           "_VARS_FNAME_NPZ", "_ASSETS_DIRNAME")


def _saving_lib():
    from keras.src.saving import saving_lib

    return saving_lib


def phased() -> bool:
    """Whether this Keras has the two steps (else load with `keras.saving.load_model`)."""
    try:
        lib = _saving_lib()
    except ImportError:
        return False
    return all(hasattr(lib, name) for name in _NEEDED)


def build(model_file: str | Path, *, custom_objects: dict[str, Any] | None,
          safe_mode: bool) -> Any:
    """The model of a `.keras` archive from its config, with fresh weights (compile=False)."""
    lib = _saving_lib()
    with zipfile.ZipFile(model_file, "r") as zf:
        config_json = zf.read(lib._CONFIG_FILENAME)
    return lib._model_from_config(config_json, custom_objects, False, safe_mode)


def load_weights(model: Any, model_file: str | Path) -> None:
    """Read a `.keras` archive's weights (and assets) into `model`, built by `build`."""
    lib = _saving_lib()
    with zipfile.ZipFile(model_file, "r") as zf:
        names = zf.namelist()
        if lib._VARS_FNAME_H5 in names:
            # The preflight bounded this member's size and compression ratio already.
            weights = lib.H5IOStore(io.BytesIO(zf.read(lib._VARS_FNAME_H5)), mode="r")
        elif lib._VARS_FNAME_NPZ in names:
            weights = lib.NpzIOStore(lib._VARS_FNAME_NPZ, zf, mode="r")
        else:
            raise ValueError(f"Expected a {lib._VARS_FNAME_H5} or {lib._VARS_FNAME_NPZ} file.")
        assets = lib.DiskIOStore(lib._ASSETS_DIRNAME, archive=zf, mode="r") \
            if len(names) > 3 else None
        failed: set = set()
        messages: dict = {}
        try:
            lib._load_state(model, weights_store=weights, assets_store=assets, inner_path="",
                            visited_saveables=set(), failed_saveables=failed,
                            error_msgs=messages)
        finally:
            weights.close()
            if assets is not None:
                assets.close()
    if failed:
        lib._raise_loading_failure(messages)


def load(report: Preflight, custom_objects: dict[str, Any], safe_mode: bool, shown: str,
         at: Callable[[str], None]) -> Any:
    """The Keras model of a preflighted `.keras` or `.h5` file, with Keras' errors translated
    (`insight.model.keras_errors`); `at` is called at `"start"`, `"built"` and `"loaded"`
    (see `insight.model.loading.load_preflighted`)."""
    import keras

    at("start")
    try:
        if report.format == "keras" and report.model_file.is_file() and phased():
            model = build(report.model_file, custom_objects=custom_objects or None,
                          safe_mode=safe_mode)
            at("built")
            load_weights(model, report.model_file)
        else:
            model = keras.saving.load_model(
                report.model_file, custom_objects=custom_objects or None, compile=False,
                safe_mode=safe_mode,
            )
            at("built")
    except Exception as exc:
        raise translate(exc, shown, report) from exc
    at("loaded")
    return model
