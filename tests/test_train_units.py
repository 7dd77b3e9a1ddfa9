"""Trainer pieces in process: schedules, Muon, parameter groups, evaluation and bpb, checkpoints, artifact."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from .conftest import TINY_GPT, make_preset
from tuiLM.train import schedule
from tuiLM.train.artifact import artifact_size, dequantize_row_int8, quantize_state_dict
from tuiLM.train.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, save_checkpoint
from tuiLM.train.evaluate import ByteTable, evaluate, stride_windows
from tuiLM.train.optim import Muon, make_optimizer, newton_schulz, split_params
from tuiLM.train.tokenizers import ByteTokenizer, CharTokenizer


def tiny_model(changes=None, vocab=256):
    from tuiLM.models import build_model

    p = make_preset({**TINY_GPT, **(changes or {})})
    torch.manual_seed(0)
    return build_model(p.model, vocab, p.data.seq_len), p


# -- schedules -----------------------------------------------------------------------------------

def sched(**kw):
    return make_preset({f"schedule.{k}": v for k, v in kw.items()}).schedule


def test_warmup_then_cosine_reaches_min_at_the_last_step():
    s = sched(warmup_steps=10, decay="cosine", min_lr_frac=0.1)
    assert schedule.lr_factor(0, s, 100) == pytest.approx(0.1)
    assert schedule.lr_factor(9, s, 100) == pytest.approx(1.0)
    assert schedule.lr_factor(10, s, 100) == pytest.approx(1.0)
    assert schedule.lr_factor(99, s, 100) == pytest.approx(0.1)
    mid = schedule.lr_factor(10 + 89 // 2, s, 100)
    assert 0.5 < mid < 0.6


def test_linear_constant_and_warmdown():
    assert schedule.lr_factor(99, sched(decay="linear", min_lr_frac=0.0), 100) == pytest.approx(0.0)
    assert schedule.lr_factor(50, sched(decay="constant"), 100) == 1.0
    wd = sched(decay="warmdown", warmdown_steps=20)
    assert schedule.lr_factor(79, wd, 100) == 1.0
    assert schedule.lr_factor(80, wd, 100) == pytest.approx(1.0)
    assert schedule.lr_factor(90, wd, 100) == pytest.approx(0.5)
    assert schedule.lr_factor(99, wd, 100) == pytest.approx(1 / 20)


def test_muon_momentum_warmup():
    o = make_preset({"optim.muon_momentum_start": 0.85, "optim.muon_momentum": 0.95,
                     "optim.muon_momentum_warmup": 500}).optim
    assert schedule.muon_momentum(0, o) == pytest.approx(0.85)
    assert schedule.muon_momentum(250, o) == pytest.approx(0.90)
    assert schedule.muon_momentum(500, o) == 0.95
    assert schedule.muon_momentum(10_000, o) == 0.95


# -- Muon ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["cpu-fp32", "gpu-bf16"])
@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (48, 48)])
def test_newton_schulz_is_close_to_orthogonal(shape, dtype):
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    x = newton_schulz(g, steps=5, dtype=dtype)
    assert x.dtype == dtype and x.shape == g.shape
    assert newton_schulz(g, steps=5).dtype == torch.float32  # a CPU tensor: fp32 (bf16 is a GPU choice)
    sv = torch.linalg.svdvals(x.float())
    # The quintic (3.4445, -4.7750, 2.0315) trades exactness for speed: singular values land in
    # roughly [0.7, 1.2] instead of exactly 1 (Keller Jordan's Muon write-up).
    assert sv.min() > 0.6 and sv.max() < 1.25
    # and the singular vectors are those of g: X is close to U V^T
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    cos = torch.nn.functional.cosine_similarity((u @ vh).flatten(), x.float().flatten(), dim=0)
    assert cos > 0.97


def test_muon_step_follows_the_spec():
    torch.manual_seed(0)
    p = nn.Parameter(torch.randn(8, 4))
    g = torch.randn(8, 4)
    p0 = p.detach().clone()
    opt = Muon([p], lr=0.1, momentum=0.9, weight_decay=0.5, ns_steps=5)
    p.grad = g.clone()
    opt.step()
    m = g  # first step: m = 0*mu + g
    nesterov = g + 0.9 * m
    expect = p0 * (1 - 0.1 * 0.5) - 0.1 * newton_schulz(nesterov).float() * math.sqrt(8 / 4)
    torch.testing.assert_close(p.detach(), expect, atol=1e-6, rtol=0)
    # second step uses the momentum buffer: m = mu*m + g
    g2 = torch.randn(8, 4)
    p1 = p.detach().clone()
    p.grad = g2.clone()
    opt.step()
    m2 = 0.9 * m + g2
    expect2 = p1 * (1 - 0.05) - 0.1 * newton_schulz(g2 + 0.9 * m2).float() * math.sqrt(2)
    torch.testing.assert_close(p.detach(), expect2, atol=1e-6, rtol=0)


def test_muon_orthogonalises_a_stack_of_matrices_matrix_by_matrix():
    """BDH's (heads, D, N) encoders: each head's D x N slice gets the update it would get alone."""
    from tuiLM.train.optim import Muon

    torch.manual_seed(0)
    stack = torch.nn.Parameter(torch.randn(3, 8, 16))
    alone = [torch.nn.Parameter(stack.detach()[h].clone()) for h in range(3)]
    grad = torch.randn(3, 8, 16)
    stack.grad = grad.clone()
    for h, p in enumerate(alone):
        p.grad = grad[h].clone()
    Muon([stack], lr=0.1).step()
    Muon(alone, lr=0.1).step()
    for h in range(3):
        assert torch.allclose(stack.detach()[h], alone[h].detach(), atol=1e-6)


def test_muon_adam_split_matches_the_spec():
    model, p = tiny_model({"model.tie_embeddings": False, "model.bigram_buckets": 64, "optim.name": "muon",
                           "model.bigram_dim": 16})
    roles = model.param_roles()
    groups = split_params(model, p.optim)
    names = {k: {n for n, _ in v} for k, v in groups.items()}
    assert names["muon"] == {n for n, r in roles.items() if r == "matrix"}
    assert names["embed"] == {n for n, r in roles.items() if r == "embed"}
    assert names["head"] == {"lm_head.weight"}
    assert names["scalar"] == {n for n, r in roles.items() if r in ("scalar", "mhc")}
    assert all(q.ndim == 2 for _, q in groups["muon"])
    assert "tok_emb.weight" in names["embed"] and not any("tok_emb" in n for n in names["muon"])
    opt = make_optimizer(model, p.optim)
    by_group = {g["group"]: g for g in opt.param_groups}
    assert by_group["muon"]["lr"] == p.optim.matrix_lr and by_group["muon"]["weight_decay"] == p.optim.weight_decay
    assert by_group["embed"]["lr"] == p.optim.embed_lr and by_group["head"]["lr"] == p.optim.head_lr
    assert by_group["scalar"]["lr"] == p.optim.scalar_lr and by_group["scalar"]["weight_decay"] == 0.0
    assert isinstance(opt.optimizers["muon"], Muon) and isinstance(opt.optimizers["adam"], torch.optim.AdamW)
    # every trainable parameter is in exactly one group
    ids = [id(q) for g in opt.param_groups for q in g["params"]]
    assert sorted(ids) == sorted(id(q) for q in model.parameters())


def test_adamw_decay_groups():
    model, p = tiny_model({"optim.name": "adamw"})
    opt = make_optimizer(model, p.optim)
    by_group = {g["group"]: g for g in opt.param_groups}
    roles = model.param_roles()
    assert set(by_group["decay"]["names"]) == {n for n, r in roles.items() if r in ("embed", "head", "matrix")}
    assert set(by_group["no_decay"]["names"]) == {n for n, r in roles.items() if r in ("scalar", "mhc")}
    assert by_group["decay"]["weight_decay"] == p.optim.weight_decay and by_group["no_decay"]["weight_decay"] == 0
    opt.set_schedule(0.5)
    assert all(g["lr"] == pytest.approx(0.5 * p.optim.lr) for g in opt.param_groups)


# -- evaluation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n,seq,stride", [(100, 16, 0), (100, 16, 4), (17, 16, 5), (33, 16, 16), (5, 16, 2),
                                          (1000, 64, 7), (65, 64, 63), (130, 8, 1)])
def test_stride_windows_score_every_target_exactly_once(n, seq, stride):
    counts = [0] * n
    windows = stride_windows(n, seq, stride)
    for start, length, score_from in windows:
        assert length <= seq and start + length <= n - 1 and 0 <= score_from < length
        for pos in range(score_from, length):
            counts[start + 1 + pos] += 1
    assert counts[0] == 0 and all(c == 1 for c in counts[1:])
    first = windows[0]
    assert first[2] == 0  # the first window scores all its targets
    if stride and len(windows) > 2:  # a regular window scores only its last `stride` targets
        assert windows[1][1] - windows[1][2] == stride


class Uniform(nn.Module):
    """Logits 0 everywhere: every target costs ln(V) nats. Records the windows it sees."""

    def __init__(self, vocab):
        super().__init__()
        self.vocab = vocab
        self.seen = []

    def forward(self, idx, targets=None):
        self.seen.append(idx.clone())
        return torch.zeros(*idx.shape, self.vocab), None


def test_stride_evaluation_scores_each_token_once_through_evaluate():
    import numpy as np

    data = np.arange(203) % 256
    model = Uniform(256)
    res = evaluate(model, [data.astype(np.uint8)], ByteTable.from_tokenizer(ByteTokenizer(), 256), seq_len=32,
                   batch_size=3, stride=8)
    assert res["val_tokens"] == 202
    assert res["val_loss"] == pytest.approx(math.log(256))
    assert sum(x.shape[0] for x in model.seen) == len(stride_windows(203, 32, 8))


@pytest.mark.parametrize("batch_size", [1, 4, 8])
def test_stride_evaluation_over_parts_of_unequal_length_scores_each_token_once(batch_size):
    """A short validation part between long ones must neither be skipped nor make a neighbour count twice."""
    import numpy as np

    parts = [np.arange(n).astype(np.uint8) for n in (100, 5, 100)]
    res = evaluate(Uniform(256), parts, ByteTable.from_tokenizer(ByteTokenizer(), 256), seq_len=16,
                   batch_size=batch_size, stride=8)
    assert res["val_tokens"] == 99 + 4 + 99


def test_byte_tokenizer_bpb_is_loss_over_ln2():
    import numpy as np

    from tuiLM.train.data import builtin_files, read_files

    root, files = builtin_files()
    chunks, _ = read_files(root, files, 20_000)
    ids = np.frombuffer(b"".join(c for _, c in chunks), dtype=np.uint8)
    model, _ = tiny_model()
    res = evaluate(model, [ids], ByteTable.from_tokenizer(ByteTokenizer(), 256), seq_len=32, batch_size=8,
                   max_batches=3)
    assert res["val_bpb"] == res["val_loss"] / math.log(2)
    assert res["val_tokens"] == res["val_bytes"] == 3 * 8 * 32


def test_char_tokenizer_bpb_counts_utf8_bytes():
    from tuiLM.train.data import encode_chars

    text = "añb€c😀" * 7  # 1, 2, 1, 3, 1, 4 UTF-8 bytes
    tok = CharTokenizer.from_text(text)
    ids = encode_chars(tok, text)
    assert tok.decode(ids.tolist()) == text
    res = evaluate(Uniform(tok.vocab_size), [ids], ByteTable.from_tokenizer(tok, tok.vocab_size), seq_len=8,
                   batch_size=4)
    targets = text[1:]  # every character but the first is a scored target
    nats = len(targets) * math.log(tok.vocab_size)
    n_bytes = sum(len(c.encode()) for c in targets)
    assert res["val_bytes"] == n_bytes == 12 * 7 - 1
    assert res["val_bpb"] == pytest.approx(nats / (math.log(2) * n_bytes), rel=1e-6)  # fp32 cross-entropy
    assert res["val_loss"] == pytest.approx(math.log(tok.vocab_size), rel=1e-6)


def test_leading_space_bytes_follow_the_previous_token():
    class Tok(ByteTokenizer):
        vocab_size = 4

        def base_bytes(self):
            return [0, 2, 3, 1]  # id 0 is special

        def leading_space(self):
            return [False, True, False, True]

        def boundary(self):
            return [True, False, False, False]

    table = ByteTable.from_tokenizer(Tok(), 6)  # padded ids count 0
    x = torch.tensor([[0, 2, 1, 3, 5]])
    y = torch.tensor([[1, 1, 2, 3, 4]])
    assert table.count(x, y).tolist() == [[2, 3, 3, 2, 0]]


def test_char_tokenizer_names_an_unknown_character():
    from tuiLM.errors import UserError

    tok = CharTokenizer.from_text("hello")
    with pytest.raises(UserError, match=r"'z'.*U\+007A"):
        tok.encode("hez")


def test_sentencepiece_without_the_package_or_model_is_a_clear_error(tmp_path):
    from tuiLM.errors import UserError
    from tuiLM.train.tokenizers import SentencePieceTokenizer

    try:
        import sentencepiece  # noqa: F401
        match = "no such SentencePiece model"
    except ImportError:
        match = "needs the sentencepiece package"
    with pytest.raises(UserError, match=match):
        SentencePieceTokenizer(tmp_path / "missing.model")


# -- checkpoints ---------------------------------------------------------------------------------

def test_checkpoint_roundtrip_retention_and_truncation(tmp_path):
    d = tmp_path / "checkpoints"
    for step in (1, 2, 3):
        save_checkpoint(d, step, {"model": {"w": torch.full((3,), float(step))}, "step": step}, {}, keep=2)
    assert [p.name for p in list_checkpoints(d)] == ["step-0000002.pt", "step-0000003.pt"]
    assert not (d / "step-0000001.json").exists()
    state = load_checkpoint(d / "step-0000003.pt")
    assert state["step"] == 3 and torch.equal(state["model"]["w"], torch.full((3,), 3.0))
    path = d / "step-0000003.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="step-0000003.pt.*truncated"):
        load_checkpoint(path)
    path.with_suffix(".json").unlink()  # without its meta nothing vouches for the bytes: refused by name
    with pytest.raises(CheckpointError, match="step-0000003.pt: its meta step-0000003.json is missing"):
        load_checkpoint(path)


# -- artifact ------------------------------------------------------------------------------------

def test_int8_rows_roundtrip_within_half_a_step():
    w = torch.randn(300, 256) * 0.05
    state = quantize_state_dict({"w": w, "small": torch.randn(10), "gain": torch.ones(4)}, {"gain": "scalar"})
    q = state["w"]
    assert q["q"].dtype == torch.int8 and q["scale"].dtype == torch.float16
    err = (dequantize_row_int8(q["q"], q["scale"]) - w).abs().max(dim=1).values
    assert torch.all(err <= q["scale"].float() * 0.51)  # half a step (+ the fp16 scale's rounding at the clip)
    big = torch.randn(300, 256) * 3  # rows beyond the 1/127 floor: the max |w| maps to 127
    qb = quantize_state_dict({"w": big})["w"]
    assert torch.all(qb["q"].abs().amax(dim=1) == 127)
    assert state["small"].dtype == torch.float16 and state["gain"].dtype == torch.float32


def test_artifact_counts_a_tied_embedding_once_and_includes_code():
    tied, _ = tiny_model({"model.tie_embeddings": True})
    a = artifact_size(tied)
    assert a["artifact_bytes"] == a["model_bytes"] + a["code_bytes"]
    assert a["code_bytes"] > 1000  # gpt.py and layers.py at least
    untied, _ = tiny_model({"model.tie_embeddings": False})
    assert artifact_size(untied)["model_bytes"] > a["model_bytes"]
