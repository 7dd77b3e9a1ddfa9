"""System metrics (psutil, NVML behind a fake), the GPU peak table and the MFU arithmetic. No training."""

from __future__ import annotations

import resource
import sys
import types

import pytest

from tuiLM.estimate import estimate
from tuiLM.estimate.peaks import PEAKS, find_gpu, mfu, peak_tflops, precision_key
from tuiLM.train.sysmetrics import GIB, SystemSampler

from .conftest import TINY_GPT, make_preset

CPU_FIELDS = {"rss_gib", "cpu_pct", "host_mem_used_gib", "host_mem_total_gib"}
GPU_FIELDS = {"gpu_util_pct", "gpu_mem_used_gib", "gpu_mem_total_gib", "gpu_power_w", "gpu_temp_c"}


def test_cpu_sample_has_the_process_and_host_fields_and_no_gpu_ones():
    s = SystemSampler(None)
    sum(i * i for i in range(300_000))  # some CPU time between the reference point and the sample
    out = s.sample()
    assert set(out) == CPU_FIELDS
    peak_rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    assert 0 < out["rss_gib"] <= peak_rss_gib + 1e-3
    assert 0 < out["host_mem_used_gib"] < out["host_mem_total_gib"]
    assert out["rss_gib"] < out["host_mem_total_gib"]
    assert out["cpu_pct"] >= 0


def test_without_psutil_the_fields_are_absent_not_an_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil raises ImportError
    assert SystemSampler(None).sample() == {}


class _NVMLError(Exception):
    pass


def _fake_pynvml(*, init_fails: bool = False, power_fails: bool = False) -> types.ModuleType:
    m = types.ModuleType("pynvml")
    m.NVMLError = _NVMLError
    m.NVML_TEMPERATURE_GPU = 0
    m.calls = []

    def init():
        if init_fails:
            raise _NVMLError("NVML Shared Library Not Found")

    def power(h):
        if power_fails:
            raise _NVMLError("Not Supported")
        return 215_500  # milliwatts

    m.nvmlInit = init
    m.nvmlShutdown = lambda: None
    m.nvmlDeviceGetHandleByUUID = lambda uuid: (_ for _ in ()).throw(_NVMLError("no such uuid"))
    m.nvmlDeviceGetHandleByIndex = lambda i: ("handle", i)
    m.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=87, memory=40)
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=30 * GIB, total=80 * GIB, free=50 * GIB)
    m.nvmlDeviceGetPowerUsage = power
    m.nvmlDeviceGetTemperature = lambda h, sensor: 61
    return m


CUDA0 = types.SimpleNamespace(type="cuda", index=0)  # only .type and .index are read


def test_nvml_fields_and_units(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml())
    out = SystemSampler(CUDA0).sample()
    gpu = {k: out[k] for k in GPU_FIELDS}
    assert gpu == {"gpu_util_pct": 87.0, "gpu_mem_used_gib": 30.0, "gpu_mem_total_gib": 80.0,
                   "gpu_power_w": 215.5, "gpu_temp_c": 61.0}
    assert CPU_FIELDS <= set(out)


def test_one_unsupported_nvml_query_drops_only_its_field(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(power_fails=True))
    out = SystemSampler(CUDA0).sample()
    assert "gpu_power_w" not in out and GPU_FIELDS - {"gpu_power_w"} <= set(out)


@pytest.mark.parametrize("fake", [lambda: _fake_pynvml(init_fails=True), lambda: None],
                         ids=["nvml-init-fails", "nvidia-ml-py-missing"])
def test_missing_nvml_means_absent_gpu_fields(monkeypatch, fake):
    monkeypatch.setitem(sys.modules, "pynvml", fake())
    out = SystemSampler(CUDA0).sample()
    assert not (GPU_FIELDS & set(out)) and CPU_FIELDS <= set(out)


# -- peaks and MFU ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name,row", [
    ("NVIDIA A100-SXM4-80GB", "A100"), ("NVIDIA A100 80GB PCIe", "A100"), ("NVIDIA H100 80GB HBM3", "H100 SXM"),
    ("NVIDIA H100 PCIe", "H100 PCIe"), ("NVIDIA H100 NVL", "H100 NVL"), ("NVIDIA H200", "H200"),
    ("NVIDIA H200 NVL", "H200 NVL"), ("NVIDIA L4", "L4"), ("NVIDIA L40S", "L40S"), ("NVIDIA A10", "A10"),
    ("NVIDIA GeForce RTX 3090", "RTX 3090"), ("NVIDIA GeForce RTX 4090", "RTX 4090"),
    ("Tesla V100-SXM2-16GB", "V100"), ("Tesla V100-PCIE-32GB", "V100 PCIe"), ("Tesla T4", "T4"),
])
def test_gpu_names_find_their_row(name, row):
    assert find_gpu(name).name == row


@pytest.mark.parametrize("name", ["NVIDIA A10G", "NVIDIA GeForce RTX 3090 Ti", "NVIDIA L40", "NVIDIA GH200 480GB",
                                  "AMD Instinct MI300X", "x86_64"])
def test_unknown_gpus_have_no_row(name):
    assert find_gpu(name) is None


def test_peak_lookup_by_precision_and_override():
    assert peak_tflops("cuda", "NVIDIA H100 80GB HBM3", "bf16", True) == (989.5, "H100 SXM bf16 dense")
    assert peak_tflops("cuda", "NVIDIA A100-SXM4-40GB", "fp32", True)[0] == 156.0  # TF32 tensor cores
    assert peak_tflops("cuda", "NVIDIA A100-SXM4-40GB", "fp32", False)[0] == 19.5  # plain fp32
    assert peak_tflops("cuda", "Tesla T4", "fp32", True)[0] == 8.1  # no TF32 on Turing: its fp32 rate
    assert peak_tflops("cuda", "Tesla T4", "bf16", True)[0] is None  # no bf16 tensor cores
    assert peak_tflops("cpu", "x86_64", "fp32", False)[0] is None  # no MFU on CPU...
    assert peak_tflops("cpu", "x86_64", "fp32", False, override=1.5) == (1.5, "system.peak_tflops")  # ...unless given
    assert peak_tflops("cuda", "NVIDIA H100 80GB HBM3", "bf16", True, override=700.0)[0] == 700.0
    assert precision_key("fp16", False) == "fp16" and precision_key("fp32", True) == "tf32"


def test_every_peak_row_is_dense_and_ordered():
    for p in PEAKS:
        for key, tf in p.tflops.items():
            assert 0 < tf < 2000, (p.name, key)
        if "bf16" in p.tflops:
            assert p.tflops["bf16"] >= p.tflops.get("tf32", 0) >= 0


def test_mfu_arithmetic_by_hand():
    # nanoGPT's example: 6N + 12 L T d per token; here a hand count for a tiny GPT
    preset = make_preset({**TINY_GPT, "model.d_model": 64, "model.n_layers": 2, "data.seq_len": 100})
    e = estimate(preset, vocab_size=256)
    d, L, T, V = 64, 2, 100, 256
    matmul = L * (4 * d * d + 2 * d * 4 * d) + V * d  # q,k,v,o + MLP in/out per layer; tied head
    assert e.flops_per_token == 6 * matmul + 12 * L * T * d
    tokens_per_s = 50_000.0
    flops_per_s = e.flops_per_token * tokens_per_s
    # 2 devices of 1 TFLOPS each
    assert mfu(flops_per_s, 1.0, devices=2) == pytest.approx(flops_per_s / 2e12)
    assert mfu(2e12, 1.0, devices=2) == 1.0


def test_system_panels_plot_the_contract_fields():
    from tuiLM.tui.metrics import PANELS

    contract = CPU_FIELDS | GPU_FIELDS | {"flops_per_s", "mfu", "cuda_max_alloc_gib", "cuda_reserved_gib"}
    system = [p for p in PANELS if p.group == "system"]
    columns = {line.column for p in system for line in p.lines}
    assert columns <= contract
    assert contract - columns == {"host_mem_total_gib", "gpu_mem_total_gib"}  # totals: in runs show, not plotted
    assert all(p.optional and p.lines[0].kinds == ("train",) for p in system)  # hidden where not measured
