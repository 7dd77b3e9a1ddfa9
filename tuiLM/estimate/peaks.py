"""Peak dense throughput of common GPUs, for MFU (model FLOPs utilisation). Pure Python.

MFU = achieved model FLOPs/s / (peak FLOPs/s of one device x devices), with the model FLOPs from
``estimate(...).flops_per_token`` (6N + attention, the PaLM / nanoGPT convention) times tokens/s.

The figures are DENSE tensor-core peaks in TFLOPS (10^12 FLOP/s). NVIDIA's datasheets print the
2:4-sparsity figure first for Ampere and later parts (marked "*" or "with sparsity"); the dense figure
is half of it. GeForce cards are quoted with FP32 accumulation (what autocast uses), which is half the
FP16-accumulate figure of their whitepapers. ``fp32`` is the plain CUDA-core rate (TF32 off, or a GPU
without TF32). Sources:

  A100         NVIDIA A100 Tensor Core GPU datasheet: TF32 156, BF16/FP16 312, FP32 19.5
  H100 SXM     NVIDIA H100 Tensor Core GPU datasheet: TF32 989*, BF16/FP16 1979*, FP32 67
  H100 PCIe    same datasheet: TF32 756*, BF16/FP16 1513*, FP32 51
  H100 NVL     same datasheet: TF32 835*, BF16/FP16 1671*, FP32 60
  H200         NVIDIA H200 Tensor Core GPU datasheet (SXM): TF32 989*, BF16/FP16 1979*, FP32 67
  H200 NVL     same datasheet: TF32 835*, BF16/FP16 1671*, FP32 60
  L4           NVIDIA L4 datasheet: TF32 120*, BF16/FP16 242*, FP32 30.3
  L40S         NVIDIA L40S datasheet: TF32 183 | 366*, BF16/FP16 362.05 | 733*, FP32 91.6
  A10          NVIDIA A10 datasheet: TF32 62.5 | 125*, BF16/FP16 125 | 250*, FP32 31.2
  RTX 3090     NVIDIA Ampere GA102 architecture whitepaper, table 9: FP16/BF16 tensor with FP32
               accumulate 71 (142 sparse), TF32 35.6, FP32 35.6
  RTX 4090     NVIDIA Ada Lovelace architecture whitepaper, appendix A: FP16/BF16 tensor with FP32
               accumulate 165.2 (330.4 sparse), TF32 82.6, FP32 82.6
  V100         NVIDIA V100 datasheet: SXM2 tensor 125, FP32 15.7; PCIe tensor 112, FP32 14 (no BF16, no TF32)
  T4           NVIDIA T4 datasheet: FP16 tensor 65, FP32 8.1 (no BF16, no TF32)

A GPU not in the table, a CPU, or a precision the GPU has no tensor cores for gives no peak (MFU is
then absent); ``system.peak_tflops`` gives the peak of one device by hand and wins over the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Peak:
    name: str
    pattern: str  # regular expression matched (case-insensitively) against the CUDA device name
    tflops: dict[str, float]  # precision (bf16 | fp16 | tf32 | fp32) -> dense TFLOPS


# Order matters: the first match wins (H100 NVL before H100, L40S before L4, A100 before A10).
PEAKS: tuple[Peak, ...] = (
    Peak("H100 NVL", r"\bH100\b.*\bNVL\b", {"bf16": 835.5, "fp16": 835.5, "tf32": 417.5, "fp32": 60.0}),
    Peak("H100 PCIe", r"\bH100\b.*\bPCIe\b", {"bf16": 756.5, "fp16": 756.5, "tf32": 378.0, "fp32": 51.2}),
    Peak("H100 SXM", r"\bH100\b", {"bf16": 989.5, "fp16": 989.5, "tf32": 494.5, "fp32": 66.9}),
    Peak("H200 NVL", r"\bH200\b.*\bNVL\b", {"bf16": 835.5, "fp16": 835.5, "tf32": 417.5, "fp32": 60.0}),
    Peak("H200", r"\bH200\b", {"bf16": 989.5, "fp16": 989.5, "tf32": 494.5, "fp32": 66.9}),
    Peak("A100", r"\bA100\b", {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    Peak("L40S", r"\bL40S\b", {"bf16": 362.05, "fp16": 362.05, "tf32": 183.0, "fp32": 91.6}),
    Peak("L4", r"\bL4\b", {"bf16": 121.0, "fp16": 121.0, "tf32": 60.0, "fp32": 30.3}),
    Peak("A10", r"\bA10\b", {"bf16": 125.0, "fp16": 125.0, "tf32": 62.5, "fp32": 31.2}),
    Peak("RTX 4090", r"\bRTX 4090\b", {"bf16": 165.2, "fp16": 165.2, "tf32": 82.6, "fp32": 82.6}),
    Peak("RTX 3090", r"\bRTX 3090\b(?! Ti)", {"bf16": 71.0, "fp16": 71.0, "tf32": 35.6, "fp32": 35.6}),
    Peak("V100 PCIe", r"\bV100\b.*\bPCIE\b", {"fp16": 112.0, "fp32": 14.0}),
    Peak("V100", r"\bV100\b", {"fp16": 125.0, "fp32": 15.7}),
    Peak("T4", r"\bT4\b", {"fp16": 65.0, "fp32": 8.1}),
)


def find_gpu(device_name: str) -> Peak | None:
    """The table row for a CUDA device name such as 'NVIDIA H100 80GB HBM3', or None."""
    for peak in PEAKS:
        if re.search(peak.pattern, device_name, re.IGNORECASE):
            return peak
    return None


def precision_key(dtype: str, tf32: bool) -> str:
    """Which peak applies: bf16 / fp16 autocast use theirs; fp32 runs on TF32 tensor cores when allowed."""
    if dtype in ("bf16", "fp16"):
        return dtype
    return "tf32" if tf32 else "fp32"


def peak_tflops(device_type: str, device_name: str, dtype: str, tf32: bool, override: float = 0.0
                ) -> tuple[float | None, str]:
    """Peak dense TFLOPS of ONE device and where the figure comes from.

    ``override`` (system.peak_tflops) > 0 wins. Otherwise CUDA devices are looked up in ``PEAKS``; a GPU
    whose tensor cores lack TF32 (V100, T4) falls back to its fp32 rate. No figure: (None, why).
    """
    if override > 0:
        return float(override), "system.peak_tflops"
    if device_type != "cuda":
        return None, f"no peak for {device_type} (set system.peak_tflops)"
    gpu = find_gpu(device_name)
    if gpu is None:
        return None, f"{device_name!r} is not in the peak table (set system.peak_tflops)"
    key = precision_key(dtype, tf32)
    if key == "tf32" and key not in gpu.tflops:
        key = "fp32"
    if key not in gpu.tflops:
        return None, f"{gpu.name} has no {key} tensor cores in the peak table (set system.peak_tflops)"
    return gpu.tflops[key], f"{gpu.name} {key} dense"


def mfu(flops_per_s: float, peak_tflops_per_device: float, devices: int = 1) -> float:
    """Model FLOPs utilisation as a fraction (0..1): achieved FLOPs/s over the peak of all devices."""
    return flops_per_s / (peak_tflops_per_device * 1e12 * max(1, devices))


__all__ = ["PEAKS", "Peak", "find_gpu", "mfu", "peak_tflops", "precision_key"]
