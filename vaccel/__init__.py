"""vaccel — GPU vector search and ML primitives on Vulkan.

    import vaccel
    vaccel.info()                       # backend and device capabilities
    d = vaccel.cdist(xa, xb, "sqeuclidean")
"""

__version__ = "0.1.0"

from .errors import (DeviceLost, DeviceNotAvailable, FeatureNotSupported, NotFittedError, NotTrainedError,
                     OutOfDeviceMemory, VaccelError)
from .runtime import (Array, asarray, batch, config, devices, empty, get_backend, info, memory_stats, profile,
                      report, set_backend, synchronize, validation_messages)
from .distances import cdist, normalize
from .search import knn, topk
from .index import FlatIndex, IndexFileError
from .indexfile import load_index
from .quantizers import BinaryQuantizer, Quantizer, ScalarQuantizer
from .quantized_index import BinaryIndex, SQIndex
from .linalg import matmul, matvec, transpose
from .reductions import argmax, argmin, histogram, max, mean, min, statistics, std, sum, var
from .cluster import KMeans
from .elementwise import (abs, absolute, add, clip, compile_expr, divide, exp, fuse, gelu, layer_norm, log,  # noqa: A004
                          maximum, minimum, multiply, negative, relu, sigmoid, silu, softmax, sqrt, subtract)
from .pq import PQIndex, ProductQuantizer
from .ivf import IVFFlatIndex, IVFPQIndex

__all__ = [
    "Array", "DeviceLost", "FlatIndex", "IndexFileError", "KMeans", "load_index", "DeviceNotAvailable", "FeatureNotSupported", "NotFittedError", "OutOfDeviceMemory", "VaccelError",
    "NotTrainedError", "Quantizer", "ScalarQuantizer", "BinaryQuantizer", "SQIndex", "BinaryIndex",
    "asarray", "batch", "cdist", "config", "devices", "empty", "get_backend", "info", "knn", "matmul", "matvec", "memory_stats", "normalize", "profile",
    "report", "set_backend", "synchronize", "topk", "transpose", "validation_messages",
    "argmax", "argmin", "histogram", "max", "mean", "min", "statistics", "std", "sum", "var",
    "abs", "absolute", "add", "clip", "compile_expr", "divide", "exp", "fuse", "gelu", "layer_norm", "log",
    "maximum", "minimum", "multiply", "negative", "relu", "sigmoid", "silu", "softmax", "sqrt", "subtract",
    "ProductQuantizer", "PQIndex", "IVFFlatIndex", "IVFPQIndex",
]
