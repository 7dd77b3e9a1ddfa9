"""Corpora and batches: every file format with small files written here, bad files named in the error."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from tuiLM.errors import UserError
from tuiLM.train.data import (SHARD_MAGIC, BatchSampler, DataError, builtin_files, load_corpus, read_shard)
from tuiLM.train.tokenizers import ByteTokenizer, CharTokenizer, IdTokenizer, MetaTokenizer

from .conftest import make_preset


def data_cfg(**kw):
    return make_preset({f"data.{k}": v for k, v in kw.items()}).data


def write_shard(path, tokens, magic=SHARD_MAGIC, version=1, count=None):
    header = np.zeros(256, dtype="<i4")
    header[:3] = (magic, version, len(tokens) if count is None else count)
    with open(path, "wb") as fh:
        fh.write(header.tobytes())
        fh.write(np.asarray(tokens, dtype="<u2").tobytes())
    return path


# -- builtin and text ----------------------------------------------------------------------------

def test_builtin_corpus_is_the_stdlib_in_sorted_order_with_max_bytes():
    root, files = builtin_files()
    rel = [f.relative_to(root).as_posix() for f in files]
    assert rel == sorted(rel) and all(r.endswith(".py") for r in rel)
    assert not any("site-packages" in r for r in rel)
    c = load_corpus(data_cfg(source="builtin", max_bytes=50_000, train_ratio=0.9))
    assert c.train_tokens + c.val_tokens == 50_000 and c.train_tokens == 45_000
    assert isinstance(c.tokenizer, ByteTokenizer) and c.vocab_size == 256
    assert c.info["fingerprint"] == load_corpus(data_cfg(source="builtin", max_bytes=50_000)).info["fingerprint"]
    assert c.info["fingerprint"] != load_corpus(data_cfg(source="builtin", max_bytes=60_000)).info["fingerprint"]
    first = files[0].read_bytes()[:100]
    assert bytes(c.train[0][:100].tolist()) == first


def test_text_folder_char_tokenizer(tmp_path):
    (tmp_path / "b.txt").write_text("héllo wörld\n" * 50, encoding="utf-8")
    (tmp_path / "a.txt").write_text("abc€\n" * 50, encoding="utf-8")
    (tmp_path / ".hidden").write_text("ZZZ")
    c = load_corpus(data_cfg(source="text", path=str(tmp_path), tokenizer="char", train_ratio=0.5))
    tok = c.tokenizer
    assert isinstance(tok, CharTokenizer) and "Z" not in tok.chars and "€" in tok.chars
    text = tok.decode(np.concatenate([c.train[0], c.val[0]]).tolist())
    assert text.startswith("abc€\n") and text.endswith("wörld\n")  # sorted: a.txt first
    assert c.info["files"] == 2


def test_text_char_tokenizer_rejects_non_utf8_naming_the_file(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"ok \xff\xfe broken" * 10)
    with pytest.raises(DataError, match="bad.txt: not UTF-8"):
        load_corpus(data_cfg(source="text", path=str(tmp_path / "bad.txt"), tokenizer="char"))


def test_missing_text_path_is_named():
    with pytest.raises(DataError, match="no-such-file.txt"):
        load_corpus(data_cfg(source="text", path="/nonexistent/no-such-file.txt"))


def test_an_empty_corpus_and_a_device_as_data_are_named_for_what_they_are(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match=r"empty\.txt: the corpus is empty$"):
        load_corpus(data_cfg(source="text", path=str(tmp_path / "empty.txt")))
    (tmp_path / "d").mkdir()
    for name in ("a", "b"):
        (tmp_path / "d" / name).write_text("")
    with pytest.raises(DataError, match=r"/d: the corpus is empty \(2 files, none with text\)"):
        load_corpus(data_cfg(source="text", path=str(tmp_path / "d")))
    with pytest.raises(DataError, match="'/dev/null': not a file or a folder"):
        load_corpus(data_cfg(source="text", path="/dev/null"))


# -- nanoGPT -------------------------------------------------------------------------------------

def test_nanogpt_folder_with_meta(tmp_path):
    chars = sorted(set("hello world"))
    stoi = {ch: i for i, ch in enumerate(chars)}
    itos = {i: ch for i, ch in enumerate(chars)}
    ids = np.array([stoi[c] for c in "hello world " * 40 if c in stoi], dtype=np.uint16)
    ids.tofile(tmp_path / "train.bin")
    ids[:100].tofile(tmp_path / "val.bin")
    with open(tmp_path / "meta.pkl", "wb") as fh:
        pickle.dump({"vocab_size": len(chars), "itos": itos, "stoi": stoi}, fh)
    c = load_corpus(data_cfg(source="nanogpt", path=str(tmp_path)))
    assert isinstance(c.tokenizer, MetaTokenizer) and c.vocab_size == len(chars)
    assert c.tokenizer.decode(c.val[0][:5].tolist()) == "hello"
    assert c.tokenizer.encode("hello") == [stoi[ch] for ch in "hello"]
    assert c.train_tokens == len(ids) and c.val_tokens == 100


def _shakespeare_like(folder: Path) -> int:
    """A nanoGPT char folder like shakespeare_char: 65 characters in meta.pkl."""
    chars = sorted(set("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
    assert len(chars) == 65
    stoi = {ch: i for i, ch in enumerate(chars)}
    ids = np.array([stoi[c] for c in "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 30],
                   dtype=np.uint16)
    ids.tofile(folder / "train.bin")
    ids[:200].tofile(folder / "val.bin")
    with open(folder / "meta.pkl", "wb") as fh:
        pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}, fh)
    return len(chars)


@pytest.mark.parametrize("tokenizer", ["byte", "char"])
def test_nanogpt_meta_vocabulary_is_used_estimated_and_recorded(tmp_path, tokenizer):
    """No need to declare anything: meta.pkl's vocabulary trains, the estimate counts it, and the
    frozen preset says char (what was used), not the byte default."""
    from tuiLM.config.load import load
    from tuiLM.config.validate import validate
    from tuiLM.estimate import estimate
    from tuiLM.launch import create_run

    from .conftest import TINY_GPT, make_preset

    data = tmp_path / "shakespeare_char"
    data.mkdir()
    n = _shakespeare_like(data)
    preset = make_preset({**TINY_GPT, "data.source": "nanogpt", "data.path": str(data), "data.tokenizer": tokenizer})
    assert not [p for p in validate(preset) if p.is_error]
    c = load_corpus(preset.data)
    assert isinstance(c.tokenizer, MetaTokenizer) and c.vocab_size == n == 65
    e = estimate(preset)
    assert e.vocab_size == 65 and e.vocab_exact and e.vocab_source == "meta.pkl"
    assert e.params == estimate(preset, vocab_size=65).params < estimate(preset, vocab_size=256).params
    run_dir = create_run(preset, root=tmp_path / "runs")
    frozen, problems = load(run_dir / "preset.toml")
    assert frozen.data.tokenizer == "char" and not [p for p in problems if p.is_error]
    assert load_corpus(frozen.data).vocab_size == 65


def test_nanogpt_char_without_meta_is_named(tmp_path):
    np.array([5, 7] * 100, dtype=np.uint16).tofile(tmp_path / "train.bin")
    np.array([5, 7] * 10, dtype=np.uint16).tofile(tmp_path / "val.bin")
    with pytest.raises(DataError, match="no meta.pkl: tokenizer = 'char' on nanoGPT data"):
        load_corpus(data_cfg(source="nanogpt", path=str(tmp_path), tokenizer="char"))


def test_nanogpt_without_meta_needs_a_vocabulary(tmp_path):
    np.array([5, 300, 7] * 100, dtype=np.uint16).tofile(tmp_path / "train.bin")
    np.array([5, 300, 7] * 10, dtype=np.uint16).tofile(tmp_path / "val.bin")
    with pytest.raises(DataError, match="val.bin: token id 300 is outside the vocabulary of 256"):
        load_corpus(data_cfg(source="nanogpt", path=str(tmp_path)))
    c = load_corpus(data_cfg(source="nanogpt", path=str(tmp_path), vocab_size=512))
    assert isinstance(c.tokenizer, IdTokenizer) and c.vocab_size == 512 and not c.tokenizer.bytes_known


def test_nanogpt_odd_size_and_missing_files_are_named(tmp_path):
    (tmp_path / "train.bin").write_bytes(b"\x00" * 11)
    np.zeros(10, dtype=np.uint16).tofile(tmp_path / "val.bin")
    with pytest.raises(DataError, match=r"train.bin: size 11 is odd"):
        load_corpus(data_cfg(source="nanogpt", path=str(tmp_path)))
    (tmp_path / "train.bin").unlink()
    with pytest.raises(DataError, match=r"train.bin: no such file"):
        load_corpus(data_cfg(source="nanogpt", path=str(tmp_path)))


def test_nanogpt_bad_meta_is_named(tmp_path):
    np.zeros(100, dtype=np.uint16).tofile(tmp_path / "train.bin")
    np.zeros(100, dtype=np.uint16).tofile(tmp_path / "val.bin")
    (tmp_path / "meta.pkl").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="meta.pkl: not a nanoGPT meta.pkl"):
        load_corpus(data_cfg(source="nanogpt", path=str(tmp_path)))


# -- shards --------------------------------------------------------------------------------------

def test_shards_roundtrip_and_split(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 1024, 3000)
    b = rng.integers(0, 1024, 2000)
    v = rng.integers(0, 1024, 500)
    write_shard(tmp_path / "train_000.bin", a)
    write_shard(tmp_path / "train_001.bin", b)
    write_shard(tmp_path / "val_000.bin", v)
    assert np.array_equal(read_shard(tmp_path / "train_001.bin"), b)
    c = load_corpus(data_cfg(source="shards", path=str(tmp_path / "train_*.bin"),
                             val_path=str(tmp_path / "val_*.bin"), vocab_size=1024))
    assert [len(p) for p in c.train] == [3000, 2000] and c.val_tokens == 500 and c.vocab_size == 1024
    # without validation shards the tail of the last training shard is held out
    c2 = load_corpus(data_cfg(source="shards", path=str(tmp_path / "train_*.bin"), vocab_size=1024, train_ratio=0.9))
    assert [len(p) for p in c2.train] == [3000, 1800] and c2.val_tokens == 200


def test_train_shards_that_include_the_validation_shards_are_rejected(tmp_path):
    rng = np.random.default_rng(0)
    write_shard(tmp_path / "fineweb_train_000.bin", rng.integers(0, 1024, 3000))
    write_shard(tmp_path / "fineweb_val_000.bin", rng.integers(0, 1024, 500))
    with pytest.raises(DataError, match="share 1 shard"):
        load_corpus(data_cfg(source="shards", path=str(tmp_path), val_path=str(tmp_path / "fineweb_val_*.bin"),
                             vocab_size=1024))


@pytest.mark.parametrize("kind,match", [
    ("magic", r"bad\.bin: bad magic 12345"),
    ("version", r"bad\.bin: unsupported shard version 2"),
    ("size", r"bad\.bin: size 1224 does not match the header's 101 tokens"),
    ("short", r"bad\.bin: 100 bytes is shorter"),
])
def test_bad_shards_are_rejected_naming_the_file(tmp_path, kind, match):
    path = tmp_path / "bad.bin"
    if kind == "magic":
        write_shard(path, range(100), magic=12345)
    elif kind == "version":
        write_shard(path, range(100), version=2)
    elif kind == "size":
        write_shard(path, range(100), count=101)
    else:
        path.write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match=match):
        read_shard(path)
    with pytest.raises(UserError, match="bad.bin"):
        load_corpus(data_cfg(source="shards", path=str(path), vocab_size=1024))


# -- batches -------------------------------------------------------------------------------------

def test_sampler_state_restores_the_same_batches_and_windows_are_real():
    data = [np.arange(10_000, dtype=np.int32) % 1000]
    s = BatchSampler(data, seq_len=16, rows_per_step=8, seed=3, vocab_size=1000)
    s.draw()
    state = s.state_dict()
    expect = [s.draw() for _ in range(3)]
    s2 = BatchSampler(data, seq_len=16, rows_per_step=8, seed=99, vocab_size=1000)
    s2.load_state_dict(state)
    assert all(np.array_equal(a, b) for a, b in zip(expect, (s2.draw() for _ in range(3))))
    x, y = s.micro_batch(expect[0], 0, 0, 1, 8)
    assert x.dtype == torch.int64 and x.shape == (8, 16) and torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(y - x, torch.where(x == 999, -999, 1))  # consecutive tokens of the stream


def test_ranks_draw_disjoint_rows_that_equal_single_process_accumulation():
    data = [np.arange(50_000, dtype=np.int32), np.arange(100_000, 100_300, dtype=np.int32)]
    kw = dict(seq_len=8, rows_per_step=8, vocab_size=200_000)
    single = BatchSampler(data, seed=1, **kw)
    starts = single.draw()
    one = [single.micro_batch(starts, m, 0, 1, 2)[0] for m in range(4)]  # 1 process, accumulation 4
    two = [BatchSampler(data, seed=1, **kw).micro_batch(starts, m, r, 2, 2)[0] for m in range(2) for r in range(2)]
    assert torch.equal(torch.cat(one), torch.cat(two))
    rows = {tuple(r.tolist()) for r in torch.cat(two)}
    assert len(rows) == 8  # disjoint (distinct windows with overwhelming probability)
    # no window crosses from one part into the next: every window is 8 consecutive ids
    many = BatchSampler(data, seed=2, **{**kw, "rows_per_step": 4000})
    windows = many.micro_batch(many.draw(), 0, 0, 1, 4000)[0]
    assert torch.all(windows[:, -1] - windows[:, 0] == 7)
    assert (windows[:, 0] >= 100_000).any()  # the short part is sampled too


def test_split_shorter_than_a_window_is_a_clear_error():
    with pytest.raises(DataError, match="shorter than one window"):
        BatchSampler([np.arange(10)], seq_len=16, rows_per_step=1, seed=0, vocab_size=256)
