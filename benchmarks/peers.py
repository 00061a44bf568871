"""Optional imports of everything the benchmarks compare against, and how to wait for each.

Nothing here is required except NumPy: a peer that does not import (or imports but has no
device) is recorded as missing with the reason, and its cases are skipped. vaccel itself is
imported here too, after the CLI has put --device into VACCEL_DEVICE.
"""

import importlib
import platform
import sys


def _try_import(name):
    try:
        return importlib.import_module(name), None
    except Exception as e:  # ImportError, but also broken CUDA installs raising at import
        return None, f"{type(e).__name__}: {e}"


class Peers:
    """What is available in this process. Build once with Peers.load()."""

    def __init__(self):
        self.missing = {}  # name -> reason
        self.np = None
        self.scipy_distance = None
        self.faiss = None
        self.faiss_gpu = False
        self.torch = None
        self.torch_cuda = False
        self.cupy = None
        self.vaccel = None

    @classmethod
    def load(cls, want_vaccel=True):
        p = cls()
        import numpy
        p.np = numpy

        mod, err = _try_import("scipy.spatial.distance")
        if mod is None:
            p.missing["scipy"] = err
        p.scipy_distance = mod

        mod, err = _try_import("faiss")
        if mod is None:
            p.missing["faiss"] = err
        else:
            p.faiss = mod
            try:
                p.faiss_gpu = hasattr(mod, "StandardGpuResources") and mod.get_num_gpus() > 0
            except Exception:
                p.faiss_gpu = False
            if not p.faiss_gpu:
                p.missing["faiss-gpu"] = "faiss has no GPU support or sees no GPU"

        mod, err = _try_import("torch")
        if mod is None:
            p.missing["torch"] = err
        else:
            p.torch = mod
            try:
                p.torch_cuda = bool(mod.cuda.is_available())
            except Exception as e:
                p.torch_cuda = False
                p.missing["torch-cuda"] = f"{type(e).__name__}: {e}"
            if p.torch_cuda:
                # Compare fp32 against fp32: no TF32 anywhere in the peers.
                mod.backends.cuda.matmul.allow_tf32 = False
                mod.backends.cudnn.allow_tf32 = False
            elif "torch-cuda" not in p.missing:
                p.missing["torch-cuda"] = "torch.cuda.is_available() is False"

        mod, err = _try_import("cupy")
        if mod is None:
            p.missing["cupy"] = err
        else:
            try:
                if mod.cuda.runtime.getDeviceCount() > 0:
                    p.cupy = mod
                else:
                    p.missing["cupy"] = "cupy sees no CUDA device"
            except Exception as e:
                p.missing["cupy"] = f"{type(e).__name__}: {e}"

        if want_vaccel:
            mod, err = _try_import("vaccel")
            if mod is not None and not hasattr(mod, "cdist"):
                mod, err = None, f"vaccel imported from {getattr(mod, '__path__', '?')} but has no cdist (not built?)"
            if mod is None:
                p.missing["vaccel"] = err
            p.vaccel = mod
        return p

    # -- waiting for asynchronous work -------------------------------------------------------
    def sync_torch(self):
        self.torch.cuda.synchronize()

    def sync_cupy(self):
        self.cupy.cuda.get_current_stream().synchronize()

    def sync_vaccel(self):
        self.vaccel.synchronize()

    @staticmethod
    def sync_none():
        pass

    # -- description -------------------------------------------------------------------------
    def vaccel_info(self):
        if self.vaccel is None:
            return None
        try:
            return self.vaccel.info()
        except Exception as e:
            return {"error": f"{type(e).__name__}: {e}"}

    def vaccel_device_name(self):
        info = self.vaccel_info() or {}
        dev = info.get("device") if isinstance(info, dict) else None
        if isinstance(dev, dict) and dev.get("name"):
            return str(dev["name"])
        if isinstance(info, dict) and info.get("backend") == "cpu":
            return "vaccel cpu backend"
        return "unknown"

    def vaccel_device_type(self):
        info = self.vaccel_info() or {}
        dev = info.get("device") if isinstance(info, dict) else None
        if isinstance(dev, dict):
            return str(dev.get("type", "")).lower()
        return ""

    def cuda_device_name(self):
        if self.torch_cuda:
            return self.torch.cuda.get_device_name(0)
        if self.cupy is not None:
            try:
                props = self.cupy.cuda.runtime.getDeviceProperties(0)
                name = props.get("name", b"cuda")
                return name.decode() if isinstance(name, bytes) else str(name)
            except Exception:
                pass
        return "cuda"

    @staticmethod
    def host_name():
        proc = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        proc = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        return f"cpu: {proc}"

    def versions(self):
        v = {"python": sys.version.split()[0], "numpy": self.np.__version__}
        for key, mod in (("torch", self.torch), ("cupy", self.cupy), ("faiss", self.faiss),
                         ("vaccel", self.vaccel)):
            v[key] = getattr(mod, "__version__", None) if mod is not None else None
        if self.scipy_distance is not None:
            import scipy
            v["scipy"] = scipy.__version__
        else:
            v["scipy"] = None
        if self.torch_cuda:
            v["torch_cuda"] = self.torch.version.cuda
        return v

    def available(self):
        names = ["numpy"]
        if self.scipy_distance is not None:
            names.append("scipy")
        if self.faiss is not None:
            names.append("faiss")
        if self.faiss_gpu:
            names.append("faiss-gpu")
        if self.torch is not None:
            names.append("torch-cpu")
        if self.torch_cuda:
            names.append("torch-cuda")
        if self.cupy is not None:
            names.append("cupy")
        if self.vaccel is not None:
            names.append("vaccel")
        return names
