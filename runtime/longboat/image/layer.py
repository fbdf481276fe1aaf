"""Image layers: applying a layer tar onto a directory, producing one from an overlayfs
upper directory. The work lives in ``layer_apply`` and ``layer_diff``; this module is
the public face (docs/layers.md describes the rules)."""

from __future__ import annotations

from longboat.image.layer_apply import (
    DEFAULT_MAX_ENTRY_SIZE,
    DEFAULT_MAX_SIZE,
    OPAQUE_MARKER,
    WHITEOUT_PREFIX,
    Compression,
    LayerError,
    LayerResult,
    SkippedXattr,
    WhiteoutMode,
    apply_layer,
)
from longboat.image.layer_diff import OutputCompression, make_layer

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
