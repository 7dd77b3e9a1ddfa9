"""GPU-only checks: what only a GPU can show. Skipped without CUDA (CI has none); run them on a GPU box
with `python -m pytest -m gpu tests/test_gpu.py`."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

from .conftest import TINY_GPT, make_preset  # noqa: E402


@pytest.mark.parametrize("changes", [
    {},
    {"model.arch": "mhc", "model.mhc_mode": "static"},
    {"model.arch": "mhc", "model.mhc_mode": "dynamic"},
    {"model.arch": "bdh", "model.bdh_mult": 16},
], ids=["gpt", "mhc-static", "mhc-dynamic", "bdh"])
def test_analytic_estimate_is_near_cuda_max_memory_allocated(changes):
    """The analytic estimate (without its runtime overhead margin) against torch.cuda.max_memory_allocated
    of one real bf16 training step: within 25 % (allocator rounding and cuBLAS workspaces included)."""
    from tuiLM.estimate import estimate
    from tuiLM.estimate.exact import measure

    preset = make_preset({**TINY_GPT, "model.d_model": 256, "model.n_layers": 4, "data.seq_len": 256,
                          "train.device_batch_size": 8, "system.device": "cuda", **changes})
    est = estimate(preset, vocab_size=256, device="cuda", dtype="bf16")
    counted = measure(preset, vocab_size=256, dtype="bf16", device="cuda")
    assert counted.peak_allocated is not None
    predicted = est.total_bytes - est.parts["overhead"]
    assert 0.75 < predicted / counted.peak_allocated < 1.25, (predicted, counted.peak_allocated)


def test_bf16_training_run_on_cuda(tmp_path):
    from tuiLM.reader import read_events
    from tuiLM.launch import create_run, spawn_trainer
    from tuiLM.runs import EVENTS

    run_dir = create_run(make_preset({**TINY_GPT, "system.device": "cuda", "system.dtype": "bf16",
                                      "train.max_steps": 30}), name="gpu", root=tmp_path)
    assert spawn_trainer(run_dir).wait(timeout=600) == 0
    events = read_events(run_dir / EVENTS)
    start = next(e for e in events if e["kind"] == "run_start")
    assert start["dtype"] == "bf16" and start["device"].startswith("cuda")
    losses = [e["loss"] for e in events if e["kind"] == "train"]
    assert losses[-1] < losses[0]


def test_compiled_mhc_step_on_cuda():
    from tuiLM.models import build_model

    preset = make_preset({**TINY_GPT, "model.arch": "mhc", "model.mhc_mode": "dynamic"})
    model = build_model(preset.model, 256, 32).cuda()
    compiled = torch.compile(model)
    idx = torch.randint(0, 256, (2, 32), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        _, loss = compiled(idx, idx)
    loss.backward()
    assert torch.isfinite(loss)


def test_cuda_train_events_carry_gpu_metrics_and_mfu(tmp_path):
    """NVML and the caching allocator on a real GPU: every GPU field present and plausible; MFU from the
    peak table (or absent, with the reason in run_start, for a GPU the table lacks)."""
    from tuiLM.estimate.peaks import find_gpu
    from tuiLM.reader import read_events
    from tuiLM.launch import create_run, spawn_trainer
    from tuiLM.runs import EVENTS

    run_dir = create_run(make_preset({**TINY_GPT, "system.device": "cuda", "system.dtype": "bf16",
                                      "train.max_steps": 10}), name="gpu-sys", root=tmp_path)
    assert spawn_trainer(run_dir).wait(timeout=600) == 0
    events = read_events(run_dir / EVENTS)
    start = next(e for e in events if e["kind"] == "run_start")
    trains = [e for e in events if e["kind"] == "train"]
    for e in trains:
        assert 0 <= e["gpu_util_pct"] <= 100 and 0 < e["gpu_mem_used_gib"] <= e["gpu_mem_total_gib"]
        assert e["gpu_power_w"] > 0 and 0 < e["gpu_temp_c"] < 120
        assert 0 < e["cuda_max_alloc_gib"] <= e["cuda_reserved_gib"] + 1e-3 <= e["gpu_mem_used_gib"] + 1e-3
        assert e["flops_per_s"] > 0
    if find_gpu(start["device_name"]) is not None:
        assert start["peak_tflops"] > 0
        assert all(0 < e["mfu"] < 1 for e in trains)
    else:
        assert all("mfu" not in e for e in trains) and "not in the peak table" in start["peak_source"]
