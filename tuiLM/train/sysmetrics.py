"""System metrics for train events, sampled at log cadence only (cheap reads of /proc and NVML).

Fields (all optional: an absent field means "not measured", never an error):

  rss_gib, cpu_pct             this process: resident memory, CPU since the previous sample (100 = one core)
  host_mem_used_gib, host_mem_total_gib   the machine's memory in use (total - available) and installed
  gpu_util_pct, gpu_mem_used_gib, gpu_mem_total_gib, gpu_power_w, gpu_temp_c
                               the process's CUDA device, from NVML (nvidia-ml-py), imported only on CUDA
  cuda_max_alloc_gib, cuda_reserved_gib   PyTorch's caching allocator: peak allocated, reserved now

psutil missing, NVML missing (no driver library, a container without it) or any NVML call failing
drops the fields concerned and nothing else: monitoring must never stop a run.
"""

from __future__ import annotations

from typing import Any, Callable

GIB = 2**30


def _r(x: float, digits: int = 4) -> float:
    return round(float(x), digits)


class SystemSampler:
    """``sample()`` returns the fields above for one train event. Keep one per trainer process."""

    def __init__(self, device: Any = None) -> None:
        self._proc: Any = None
        self._psutil: Any = None
        try:
            import psutil

            self._psutil = psutil
            self._proc = psutil.Process()
            self._proc.cpu_percent(None)  # the first call only sets the reference point
        except Exception:  # psutil missing or /proc unreadable: no process/host fields
            self._proc = None
        self._device = device
        self._cuda = device is not None and getattr(device, "type", "") == "cuda"
        self._nvml: Any = None
        self._handle: Any = None
        if self._cuda:
            self._open_nvml()

    # -- NVML --------------------------------------------------------------------------------------

    def _open_nvml(self) -> None:
        try:
            import pynvml  # nvidia-ml-py

            pynvml.nvmlInit()
            self._handle = self._find_handle(pynvml)
            self._nvml = pynvml
        except Exception:  # no NVML library, no driver, no permission: the GPU fields stay absent
            self._nvml = self._handle = None

    def _find_handle(self, pynvml: Any) -> Any:
        """NVML numbers all GPUs; CUDA numbers the visible ones. Match by UUID, else by index."""
        index = getattr(self._device, "index", None) or 0
        try:
            import torch

            uuid = str(torch.cuda.get_device_properties(index).uuid)
            if uuid:
                return pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
        except Exception:
            pass
        return pynvml.nvmlDeviceGetHandleByIndex(index)

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self._nvml = None

    # -- one sample --------------------------------------------------------------------------------

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self._proc is not None:
            _try(out, "rss_gib", lambda: _r(self._proc.memory_info().rss / GIB))
            _try(out, "cpu_pct", lambda: _r(self._proc.cpu_percent(None), 1))
            try:
                vm = self._psutil.virtual_memory()
                out["host_mem_used_gib"] = _r((vm.total - vm.available) / GIB)
                out["host_mem_total_gib"] = _r(vm.total / GIB)
            except Exception:
                pass
        if self._nvml is not None and self._handle is not None:
            nv, h = self._nvml, self._handle
            _try(out, "gpu_util_pct", lambda: float(nv.nvmlDeviceGetUtilizationRates(h).gpu))
            try:
                mem = nv.nvmlDeviceGetMemoryInfo(h)
                out["gpu_mem_used_gib"] = _r(mem.used / GIB)
                out["gpu_mem_total_gib"] = _r(mem.total / GIB)
            except Exception:
                pass
            _try(out, "gpu_power_w", lambda: _r(nv.nvmlDeviceGetPowerUsage(h) / 1000.0, 1))  # milliwatts
            _try(out, "gpu_temp_c", lambda: float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)))
        if self._cuda:
            try:
                import torch

                out["cuda_max_alloc_gib"] = _r(torch.cuda.max_memory_allocated(self._device) / GIB)
                out["cuda_reserved_gib"] = _r(torch.cuda.memory_reserved(self._device) / GIB)
            except Exception:
                pass
        return out


def _try(out: dict[str, float], key: str, read: Callable[[], float]) -> None:
    try:
        out[key] = read()
    except Exception:  # one unsupported query (power on some boards) drops that field only
        pass


__all__ = ["SystemSampler"]
