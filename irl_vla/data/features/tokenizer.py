"""The instruction tokenizer: a word-level ``tokenizers.Tokenizer`` built offline from our own texts.

Text is NFKC-normalised and lower-cased, split on whitespace and punctuation, and numbers are split into single
digits, so distances ("in 35 m") need only the ten digit tokens. The vocabulary is the special tokens followed
by every word of the given texts (and the digits), most frequent first, ties alphabetical: the same texts always
give the same tokenizer. It is saved as ``tokenizer.json`` (the library's own JSON format, no pickle), a
checkpoint artefact; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable
from enum import Enum
from pathlib import Path

from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel

from irl_vla.common.io import DataFormatError, atomic_open


class SpecialToken(str, Enum):
    """Special tokens, with ids in this order."""

    PAD = "[PAD]"
    UNK = "[UNK]"
    BOS = "[BOS]"
    EOS = "[EOS]"


DIGITS = tuple(str(d) for d in range(10))


def _pipeline(tokenizer: Tokenizer) -> Tokenizer:
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)]
    )
    return tokenizer


def build_tokenizer(texts: Iterable[str], *, min_count: int = 1) -> Tokenizer:
    """A word-level tokenizer whose vocabulary holds every word seen at least ``min_count`` times.

    Encodings are ``[BOS] words... [EOS]``; unknown words map to ``[UNK]``.
    """
    if min_count < 1:
        raise ValueError(f"build_tokenizer.min_count: expected >= 1, got {min_count}")
    splitter = _pipeline(Tokenizer(WordLevel({SpecialToken.UNK.value: 0}, unk_token=SpecialToken.UNK.value)))
    counts: Counter[str] = Counter()
    for text in texts:
        normalised = splitter.normalizer.normalize_str(text)
        counts.update(word for word, _ in splitter.pre_tokenizer.pre_tokenize_str(normalised))
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    vocab = {tok.value: i for i, tok in enumerate(SpecialToken)}
    for word in [*words, *DIGITS]:
        vocab.setdefault(word, len(vocab))
    tokenizer = _pipeline(Tokenizer(WordLevel(vocab, unk_token=SpecialToken.UNK.value)))
    bos, eos = SpecialToken.BOS.value, SpecialToken.EOS.value
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, vocab[bos]), (eos, vocab[eos])]
    )
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, path: str | os.PathLike[str]) -> None:
    """Write ``tokenizer.json`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(tokenizer.to_str())


def load_tokenizer(path: str | os.PathLike[str]) -> Tokenizer:
    """Read a tokenizer saved by ``save_tokenizer``.

    Raises:
        FileNotFoundError: naming the file.
        DataFormatError: naming the file when it is not a tokenizer.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no tokenizer file (irl-vla cache builds one from a split)")
    try:
        return Tokenizer.from_str(path.read_text())
    except Exception as e:  # the library raises a bare Exception on bad JSON
        raise DataFormatError(f"{path}: not a tokenizer file ({e})") from None


def tokenizer_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a tokenizer file (what a feature cache records)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
