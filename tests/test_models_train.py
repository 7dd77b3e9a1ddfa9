"""A few hundred CPU steps of every family on the bytes of a standard-library source file."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from tests.test_models import build, one_thread  # noqa: E402,F401  (one_thread: autouse fixture)

FAMILIES = {
    "gpt": dict(arch="gpt"),
    "gpt-golf": dict(arch="gpt", golf_block=True, n_layers=3, n_kv_heads=2, activation="relu2", norm="rmsnorm",
                     norm_weight=False, qk_norm=True, logit_softcap=30.0, bigram_buckets=512, bigram_dim=16),
    "mhc-static": dict(arch="mhc", mhc_h_res_init=-2.0, mhc_gate=True, mhc_stream_embed=True),
    "mhc-dynamic": dict(arch="mhc", mhc_mode="dynamic", mhc_stream_embed=True),
    "bdh": dict(arch="bdh", n_heads=2, bdh_mult=8),
}


def corpus() -> torch.Tensor:
    import argparse
    from pathlib import Path

    data = Path(argparse.__file__).read_bytes()
    return torch.tensor(list(data), dtype=torch.long)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_training_lowers_the_loss(family):
    T, B, steps = 32, 16, 150
    data = corpus()
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]
    g = torch.Generator().manual_seed(0)

    def batch(src):
        ix = torch.randint(0, len(src) - T - 1, (B,), generator=g)
        return torch.stack([src[i:i + T] for i in ix]), torch.stack([src[i + 1:i + T + 1] for i in ix])

    held_out = [batch(val) for _ in range(4)]

    def val_loss(model):
        model.eval()
        with torch.no_grad():
            out = sum(float(model(x, y)[1]) for x, y in held_out) / len(held_out)
        model.train()
        return out

    model = build(vocab=256, seq=T, **FAMILIES[family]).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    before = val_loss(model)
    assert abs(before - math.log(256)) < 0.3  # starts near uniform over bytes
    for _ in range(steps):
        x, y = batch(train)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    after = val_loss(model)
    # The byte unigram entropy of this file is 2.94 nats: ending well below it means the model
    # learned context, not just byte frequencies.
    assert after < 2.6, f"{family}: validation loss {before:.3f} -> {after:.3f}"
