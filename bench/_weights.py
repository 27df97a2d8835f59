"""The embedded model's weights as shipped, or a copy converted to another llama.cpp type.

Which matrix kernels llama.cpp has depends on the weights' type and the CPU: on x86 the
embedded model's Q4_1 has neither a repacked layout nor a batched (matrix-matrix) kernel, while
Q4_0 and Q8_0 have both. A converted copy shows what a model of that type gets; converting
already-quantized weights loses a little (Q4_0) or almost nothing (Q8_0), so it is a stand-in
for measuring, not a model to serve.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

KINDS = ("as-shipped", "q4_0", "q8_0")


def weights(source: Path, kind: str, directory: Path) -> Path:
    """``source`` itself (``as-shipped``), or a copy of it converted to ``kind`` in ``directory``."""
    if kind == "as-shipped":
        return source
    import llama_cpp

    out = directory / f"{source.stem}-{kind}.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind.upper()}")
    params.allow_requantize = True
    if llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params)) != 0:
        raise RuntimeError(f"llama.cpp could not convert the model to {kind}")
    return out
