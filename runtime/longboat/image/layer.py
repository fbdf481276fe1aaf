"""Image layers: applying a layer tar onto a directory, producing one from an overlayfs
upper directory. The work lives in ``layer_apply`` (with the ``layer_blob``,
``layer_tar``, ``layer_paths``, ``layer_entries`` and ``layer_whiteouts`` modules it puts
together) and ``layer_diff``; this module is the public face (docs/layers.md describes
the rules)."""

from __future__ import annotations

from longboat.image.layer_apply import apply_layer
from longboat.image.layer_blob import DEFAULT_MAX_SIZE, Compression
from longboat.image.layer_diff import OutputCompression, make_layer
from longboat.image.layer_result import LayerError, LayerResult, SkippedXattr
from longboat.image.layer_tar import DEFAULT_MAX_ENTRY_SIZE
from longboat.image.layer_whiteouts import OPAQUE_MARKER, WHITEOUT_PREFIX, WhiteoutMode

__all__ = [
    "DEFAULT_MAX_ENTRY_SIZE",
    "DEFAULT_MAX_SIZE",
    "OPAQUE_MARKER",
    "WHITEOUT_PREFIX",
    "Compression",
    "LayerError",
    "LayerResult",
    "OutputCompression",
    "SkippedXattr",
    "WhiteoutMode",
    "apply_layer",
    "make_layer",
]
