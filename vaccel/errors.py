"""vaccel's exceptions: VaccelError at the root; the C core's status codes map onto these in one
place (the extension's raise_status), installed here at import."""


class VaccelError(Exception):
    """Base class of every error vaccel raises about the device or its work."""


class DeviceNotAvailable(VaccelError):
    """No usable Vulkan device (no driver, or the one asked for through VACCEL_DEVICE is absent)."""


class FeatureNotSupported(VaccelError):
    """The device lacks something the operation needs."""


class OutOfDeviceMemory(VaccelError, MemoryError):
    """The device ran out of memory; the context stays usable."""


class DeviceLost(VaccelError):
    """The driver reported the device lost (a crash or reset)."""


class NotFittedError(ValueError, AttributeError):
    """An estimator (vaccel.KMeans) was used before fit; a ValueError and an AttributeError, like
    scikit-learn's sklearn.exceptions.NotFittedError."""


class NotTrainedError(VaccelError, RuntimeError):
    """A quantizer or index that needs training (faiss-style train / add / search: the quantizers,
    SQIndex) was used before train(). Estimators in scikit-learn's style (vaccel.KMeans) raise
    NotFittedError instead."""


def install(ext):
    """Hand the classes to the extension, which raises them for the core's status codes."""
    ext.set_error_types(VaccelError, DeviceNotAvailable, FeatureNotSupported, OutOfDeviceMemory, DeviceLost)
