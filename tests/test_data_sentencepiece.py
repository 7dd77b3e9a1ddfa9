"""SentencePiece: byte lengths per token (leading "▁" = one space unless after a special token)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tuiLM.train.data import load_corpus
from tuiLM.train.evaluate import ByteTable
from tuiLM.train.tokenizers import SentencePieceTokenizer, from_json

from .conftest import make_preset

spm = pytest.importorskip("sentencepiece")

TEXT = "the quick brown fox jumps over the lazy dog and then it naps in the sun\n" * 60


@pytest.fixture(scope="module")
def sp_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("sp")
    (d / "train.txt").write_text(TEXT)
    spm.SentencePieceTrainer.train(input=str(d / "train.txt"), model_prefix=str(d / "m"), vocab_size=48,
                                   model_type="bpe", byte_fallback=False, minloglevel=2)
    return d / "m.model"


def test_sentencepiece_bytes_add_up_to_the_text(sp_model):
    tok = SentencePieceTokenizer(sp_model)
    text = "the lazy fox naps in the sun"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    table = ByteTable.from_tokenizer(tok, tok.vocab_size)
    x, y = torch.tensor([ids[:-1]]), torch.tensor([ids[1:]])
    first = table.base[ids[0]].item()  # the first piece's "▁" is SentencePiece's dummy prefix, not text
    assert first + table.count(x, y).sum().item() == len(text.encode())
    special = [i for i in range(tok.vocab_size) if tok.boundary()[i]]
    assert special and all(tok.base_bytes()[i] == 0 for i in special)  # <unk>, <s>, </s>
    after_special = table.count(torch.tensor([[special[0]]]), torch.tensor([[ids[1]]])).item()
    assert after_special == tok.base_bytes()[ids[1]]  # no space counted after a special token
    assert from_json(tok.to_json()).encode(text) == ids


def test_text_corpus_with_sentencepiece(tmp_path, sp_model):
    (tmp_path / "c.txt").write_text(TEXT)
    data = make_preset({"data.source": "text", "data.path": str(tmp_path / "c.txt"), "data.tokenizer": "sentencepiece",
                        "data.tokenizer_model": str(sp_model)}).data
    c = load_corpus(data)
    assert c.vocab_size == 48 and c.info["tokenizer"] == "sentencepiece"
    ids = np.concatenate([c.train[0], c.val[0]])
    assert c.tokenizer.decode(ids.tolist()) == " ".join(TEXT.split())  # SentencePiece normalises newlines
