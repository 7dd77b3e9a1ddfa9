"""The preset schema: every hyperparameter declared once.

From this table come TOML loading, ``--set`` overrides, validation messages, the TUI form, the JSON
Schema for editors and the README reference table. Pure Python, stdlib only.

Conventions: an integer cadence of 0 means "off"; sizes that can be derived use 0 for "derive".
Fields that only apply to one model family carry ``archs`` so the form can hide the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..models import registry


@dataclass(frozen=True)
class Field:
    section: str
    key: str
    type: type  # int, float, str or bool
    default: Any
    help: str
    unit: str = ""
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    choices: tuple[str, ...] | None = None
    archs: tuple[str, ...] | None = None  # model families the field applies to (None = all)
    zero_means: str = ""  # what the value 0 means ("off", "derive", ...)

    @property
    def path(self) -> str:
        return f"{self.section}.{self.key}"

    def range_text(self) -> str:
        """Human form of the allowed values, e.g. '[0, 1)' or 'gpt | mhc | bdh'."""
        if self.choices:
            return " | ".join(self.choices)
        if self.type is bool:
            return "true | false"
        if self.min is None and self.max is None:
            return ""
        lo = "-inf" if self.min is None else _num(self.min)
        hi = "inf" if self.max is None else _num(self.max)
        left = "(" if self.min_exclusive or self.min is None else "["
        right = ")" if self.max_exclusive or self.max is None else "]"
        return f"{left}{lo}, {hi}{right}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


class FamilyNames(Sequence):
    """The choices of ``model.arch``: the registered model families (tuiLM/models/registry.py), read
    when asked, so a family registered later is a valid choice everywhere the schema is read."""

    def __getitem__(self, i):  # type: ignore[override]
        return registry.names()[i]

    def __len__(self) -> int:
        return len(registry.names())

    def __repr__(self) -> str:
        return repr(registry.names())


GPTISH = ("gpt", "mhc")
MHC = ("mhc",)
BDH = ("bdh",)

SECTIONS: dict[str, str] = {
    "run": "Run identity and seed",
    "model": "Model architecture (gpt, mhc = GPT with hyper-connections, bdh)",
    "data": "Corpus, tokenizer and context length",
    "train": "Steps, batch sizes and clipping",
    "optim": "Optimizer (AdamW, or Muon for hidden matrices + AdamW for the rest)",
    "schedule": "Learning-rate schedule",
    "eval": "Validation loss and bits per byte",
    "sample": "Text samples during training",
    "checkpoint": "Checkpoint cadence and retention",
    "diag": "Model diagnostics (mHC stream metrics)",
    "system": "Device, precision, compilation and monitoring",
}

F = Field
FIELDS: tuple[Field, ...] = (
    # -- run -------------------------------------------------------------------------------------
    F("run", "name", str, "run", "Run name; the run directory is runs/<name>-<timestamp>"),
    F("run", "seed", int, 1337, "Seed for weights, batch sampling and dropout", min=0, max=2**63 - 1),
    F("run", "notes", str, "", "Free text: what this preset is for"),
    # -- model: shared ---------------------------------------------------------------------------
    F("model", "arch", str, "gpt", "Model family", choices=FamilyNames()),  # type: ignore[arg-type]
    F("model", "n_layers", int, 4, "Number of blocks (BDH: layers share one set of weights)", min=1, max=512),
    F("model", "d_model", int, 256, "Residual width (BDH: n_embd)", min=1, max=65536),
    F("model", "n_heads", int, 4, "Query heads (BDH: n_head)", min=1, max=1024),
    F("model", "dropout", float, 0.1, "Dropout probability", min=0.0, max=1.0, max_exclusive=True),
    # -- model: GPT family (also the mHC backbone) -------------------------------------------------
    F("model", "n_kv_heads", int, 0, "Key/value heads for grouped-query attention", min=0, max=1024,
      archs=GPTISH, zero_means="same as n_heads"),
    F("model", "d_ff", int, 0, "MLP hidden width", min=0, max=1_048_576, archs=GPTISH,
      zero_means="mlp_mult x d_model"),
    F("model", "mlp_mult", float, 4.0, "MLP hidden width as a multiple of d_model (when d_ff = 0)",
      min=0.0, max=64.0, min_exclusive=True, archs=GPTISH),
    F("model", "activation", str, "gelu", "MLP activation: gelu, relu2 = relu(x)^2, swiglu",
      choices=("gelu", "relu2", "swiglu"), archs=GPTISH),
    F("model", "norm", str, "layernorm", "Normalisation layer", choices=("layernorm", "rmsnorm"), archs=GPTISH),
    F("model", "norm_weight", bool, True, "Norms have a learned gain (and bias for layernorm)", archs=GPTISH),
    F("model", "qk_norm", bool, False, "RMS-normalise queries and keys per head (no weights)", archs=GPTISH),
    F("model", "pos", str, "rope", "Position encoding", choices=("rope", "learned"), archs=GPTISH),
    F("model", "rope_base", float, 10000.0, "RoPE base (theta)", min=1.0, max=1e9, min_exclusive=True,
      archs=GPTISH),
    F("model", "tie_embeddings", bool, True, "Share the token embedding and the LM head", archs=GPTISH),
    F("model", "logit_softcap", float, 0.0, "Soft cap c*tanh(z/c) on the logits", min=0.0, max=1e4,
      archs=GPTISH, zero_means="off"),
    F("model", "bigram_buckets", int, 0, "BigramHash buckets (extra embedding of the token pair)", min=0,
      max=10_000_000, archs=GPTISH, zero_means="off"),
    F("model", "bigram_dim", int, 128, "BigramHash table width (projected to d_model)", min=1, max=65536,
      archs=GPTISH),
    F("model", "golf_block", bool, False,
      "Parameter-golf block extras: U-Net skips, residual mix with the embedding, per-block scales, "
      "per-head q gain", archs=("gpt",)),
    F("model", "qk_gain_init", float, 1.5, "Initial per-head query gain (golf_block)", min=0.0, max=100.0,
      archs=("gpt",)),
    # -- model: mHC ------------------------------------------------------------------------------
    F("model", "mhc_streams", int, 4, "Residual streams n (expansion rate); 1 = plain residual", min=1,
      max=16, archs=MHC),
    F("model", "mhc_mode", str, "static", "static: per-site H; dynamic: per-token H from the streams",
      choices=("static", "dynamic"), archs=MHC),
    F("model", "mhc_h_res_init", float, -2.0, "H_res logit init off the diagonal (diagonal 0)",
      min=-1000.0, max=1000.0, archs=MHC),
    F("model", "mhc_tau", float, 1.0, "Sinkhorn temperature (logits are divided by tau)", min=0.0,
      max=1000.0, min_exclusive=True, archs=MHC),
    F("model", "mhc_iters", int, 20, "Sinkhorn iterations", min=1, max=1000, archs=MHC),
    F("model", "mhc_gate", bool, False, "Identity gate: H = (1-g) I + g H_res with g = sigmoid(logit)",
      archs=MHC),
    F("model", "mhc_gate_init", float, 0.01, "Initial gate value g", min=0.0, max=1.0, min_exclusive=True,
      max_exclusive=True, archs=MHC),
    F("model", "mhc_gate_noise", float, 0.0, "Std of Gaussian noise on the gate logit while training",
      min=0.0, max=10.0, archs=MHC, zero_means="off"),
    F("model", "mhc_stream_embed", bool, False, "Learned per-stream embedding added at expansion",
      archs=MHC),
    F("model", "mhc_alpha_init", float, 0.01, "Dynamic mode: initial gating factors alpha", min=0.0,
      max=10.0, archs=MHC),
    # -- model: BDH ------------------------------------------------------------------------------
    F("model", "bdh_mult", int, 128, "BDH mlp_internal_dim_multiplier: neurons per head N = mult*D/heads",
      min=1, max=4096, archs=BDH),
    # -- data ------------------------------------------------------------------------------------
    F("data", "source", str, "builtin",
      "builtin = Python standard library sources (no download); text = file or folder; "
      "nanogpt = train.bin/val.bin; shards = parameter-golf .bin shards",
      choices=("builtin", "text", "nanogpt", "shards")),
    F("data", "path", str, "", "File, folder or glob for text / nanogpt / shards (train shards for shards)"),
    F("data", "val_path", str, "", "Validation shards glob (shards only)", zero_means=""),
    F("data", "tokenizer", str, "byte", "byte (vocab 256), char (vocab from the training text), "
      "sentencepiece (model file)", choices=("byte", "char", "sentencepiece")),
    F("data", "tokenizer_model", str, "", "SentencePiece .model file (tokenizer = sentencepiece)"),
    F("data", "vocab_size", int, 0, "Vocabulary size when the data cannot tell (shards)", min=0,
      max=10_000_000, zero_means="derive from the tokenizer"),
    F("data", "max_bytes", int, 0, "Read at most this many bytes of a text corpus", unit="bytes", min=0,
      max=2**62, zero_means="all"),
    F("data", "train_ratio", float, 0.95, "Fraction of a single stream used for training (rest: val)",
      min=0.0, max=1.0, min_exclusive=True, max_exclusive=True),
    F("data", "seq_len", int, 256, "Context length (block size)", unit="tokens", min=1, max=1_048_576),
    # -- train -----------------------------------------------------------------------------------
    F("train", "max_steps", int, 10000, "Optimizer steps", unit="steps", min=1, max=100_000_000),
    F("train", "device_batch_size", int, 16, "Sequences per forward/backward on each device", min=1,
      max=1_000_000),
    F("train", "total_batch_size", int, 0, "Tokens per optimizer step across devices and accumulation",
      unit="tokens", min=0, max=2**40, zero_means="device_batch_size x seq_len x world (no accumulation)"),
    F("train", "grad_clip", float, 1.0, "Clip the global gradient norm at this value", min=0.0, max=1e6,
      zero_means="off"),
    F("train", "log_every", int, 10, "Write a train event every N steps", unit="steps", min=1, max=1_000_000),
    # -- optim -----------------------------------------------------------------------------------
    F("optim", "name", str, "adamw", "adamw for everything, or muon for 2-D hidden matrices",
      choices=("adamw", "muon")),
    F("optim", "lr", float, 3e-4, "AdamW learning rate (adamw: all parameters)", min=0.0, max=10.0,
      min_exclusive=True),
    F("optim", "weight_decay", float, 0.1, "Decoupled weight decay on matrices", min=0.0, max=10.0),
    F("optim", "beta1", float, 0.9, "Adam beta1", min=0.0, max=1.0, max_exclusive=True),
    F("optim", "beta2", float, 0.95, "Adam beta2", min=0.0, max=1.0, max_exclusive=True),
    F("optim", "eps", float, 1e-8, "Adam epsilon", min=0.0, max=1.0, min_exclusive=True),
    F("optim", "matrix_lr", float, 0.04, "Muon learning rate for hidden matrices", min=0.0, max=10.0,
      min_exclusive=True),
    F("optim", "scalar_lr", float, 0.04, "Muon runs: Adam lr for vectors, scalars and mHC coefficients",
      min=0.0, max=10.0, min_exclusive=True),
    F("optim", "embed_lr", float, 0.05, "Muon runs: Adam lr for embeddings (and a tied head)", min=0.0,
      max=10.0, min_exclusive=True),
    F("optim", "head_lr", float, 0.008, "Muon runs: Adam lr for an untied LM head", min=0.0, max=10.0,
      min_exclusive=True),
    F("optim", "muon_momentum", float, 0.95, "Muon momentum after warm-up", min=0.0, max=1.0,
      max_exclusive=True),
    F("optim", "muon_momentum_start", float, 0.85, "Muon momentum at step 0", min=0.0, max=1.0,
      max_exclusive=True),
    F("optim", "muon_momentum_warmup", int, 500, "Steps to warm Muon momentum to its final value",
      unit="steps", min=0, max=100_000_000),
    F("optim", "muon_steps", int, 5, "Newton-Schulz iterations", min=1, max=50),
    # -- schedule --------------------------------------------------------------------------------
    F("schedule", "warmup_steps", int, 0, "Linear warm-up from 0", unit="steps", min=0, max=100_000_000),
    F("schedule", "decay", str, "cosine", "After warm-up: constant, cosine or linear to min_lr_frac; "
      "warmdown = constant then linear to 0 over the last warmdown_steps",
      choices=("constant", "cosine", "linear", "warmdown")),
    F("schedule", "warmdown_steps", int, 0, "Length of the final linear decay (decay = warmdown)",
      unit="steps", min=0, max=100_000_000),
    F("schedule", "min_lr_frac", float, 0.1, "Final lr as a fraction of the peak (cosine, linear)",
      min=0.0, max=1.0),
    # -- eval ------------------------------------------------------------------------------------
    F("eval", "every", int, 250, "Evaluate every N steps (and always at the end)", unit="steps", min=0,
      max=100_000_000, zero_means="only at the end"),
    F("eval", "batches", int, 20, "Validation batches per evaluation", min=0, max=1_000_000,
      zero_means="whole validation split"),
    F("eval", "stride", int, 0, "Sliding-window stride: score only the last `stride` tokens of each window",
      unit="tokens", min=0, max=1_048_576, zero_means="non-overlapping windows"),
    F("eval", "target_bpb", float, 0.0, "val_bpb this run aims for: the dashboard shades below it good and above "
      "1.2 x it bad", unit="bits/byte", min=0.0, max=100.0, zero_means="no target (no bands)"),
    # -- sample ----------------------------------------------------------------------------------
    F("sample", "every", int, 500, "Generate a sample every N steps (and at the end)", unit="steps", min=0,
      max=100_000_000, zero_means="off"),
    F("sample", "prompt", str, "The", "Prompt text"),
    F("sample", "temperature", float, 1.0, "Sampling temperature", min=0.0, max=100.0, min_exclusive=True),
    F("sample", "top_k", int, 0, "Sample from the k most likely tokens", min=0, max=10_000_000,
      zero_means="off"),
    F("sample", "max_new_tokens", int, 100, "Tokens to generate", unit="tokens", min=1, max=1_000_000),
    F("sample", "seed", int, 42, "Sampling seed", min=0, max=2**63 - 1),
    # -- checkpoint ------------------------------------------------------------------------------
    F("checkpoint", "every", int, 1000, "Checkpoint every N steps (and always at the end)", unit="steps",
      min=0, max=100_000_000, zero_means="only at the end"),
    F("checkpoint", "keep", int, 2, "Checkpoints kept (oldest deleted first)", min=1, max=10_000),
    # -- diag ------------------------------------------------------------------------------------
    F("diag", "every", int, 50, "Model diagnostics every N steps", unit="steps", min=0, max=100_000_000,
      zero_means="off"),
    # -- system ----------------------------------------------------------------------------------
    F("system", "device", str, "auto", "auto = cuda if available, else mps, else cpu",
      choices=("auto", "cpu", "cuda", "mps")),
    F("system", "dtype", str, "auto", "auto = bf16 autocast where supported, fp16 + GradScaler on older "
      "CUDA, fp32 on CPU", choices=("auto", "bf16", "fp16", "fp32")),
    F("system", "compile", bool, False, "torch.compile the model"),
    F("system", "tf32", bool, True, "Allow TF32 matmuls on CUDA"),
    F("system", "threads", int, 0, "CPU threads for torch", min=0, max=1024, zero_means="torch default"),
    F("system", "vram_budget_gib", float, 0.0, "Memory budget per device: the estimate warns above it",
      unit="GiB", min=0.0, max=1e6, zero_means="no budget"),
    F("system", "peak_tflops", float, 0.0, "Peak dense throughput of one device, the denominator of MFU",
      unit="TFLOPS", min=0.0, max=1e6, zero_means="look the GPU up in the built-in table; no MFU on CPU"),
    F("system", "tensorboard_dir", str, "", "Mirror the run live into TensorBoard files in <dir>/<run-id> "
      "(empty = off; relative to where the run is started)"),
)
del F

BY_PATH: dict[str, Field] = {f.path: f for f in FIELDS}

# Names users bring from other codebases (the documents in shared/seeds) mapped to our keys: they are
# still errors, but the message points at the right key.
ALIASES: dict[str, str] = {
    "model.n_layer": "model.n_layers",
    "model.n_embd": "model.d_model",
    "model.n_head": "model.n_heads",
    "model.mlp_internal_dim_multiplier": "model.bdh_mult",
    "model.block_size": "data.seq_len",
    "data.block_size": "data.seq_len",
    "data.max_seq_len": "data.seq_len",
    "train.batch_size": "train.device_batch_size",
    "train.max_iters": "train.max_steps",
    "train.learning_rate": "optim.lr",
    "optim.learning_rate": "optim.lr",
    "train.weight_decay": "optim.weight_decay",
    "model.sinkhorn_tau": "model.mhc_tau",
    "model.sinkhorn_iters": "model.mhc_iters",
    "model.gate_init": "model.mhc_gate_init",
    "model.mhc_static": "model.mhc_mode",
    "eval.eval_cadence": "eval.every",
    "train.eval_cadence": "eval.every",
    "sample.sampling_cadence": "sample.every",
    "train.warmdown_iters": "schedule.warmdown_steps",
}


def defaults() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for f in FIELDS:
        out[f.section][f.key] = f.default
    return out


def applies(field: Field, arch: str) -> bool:
    return field.archs is None or arch in field.archs
