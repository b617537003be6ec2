"""The language model's tokenizers: byte-level BPE trained offline, and a byte-level fallback needing no training.

Both are ``tokenizers.Tokenizer`` objects with the special tokens of ``irl_vla.data.features.tokenizer``
(``[PAD]``, ``[UNK]``, ``[BOS]``, ``[EOS]`` at ids 0-3) and encodings ``[BOS] ... [EOS]``, so the feature
builders' ``TextTokens`` reads either from its ``tokenizer.json`` (``save_tokenizer`` / ``load_tokenizer``).
Byte-level means every text round-trips exactly (no unknown tokens, no normalisation); BPE merges frequent
byte sequences of the training corpus (the embedded world's instructions and scene descriptions) into single
tokens, so sequences stay short. Training runs locally; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from irl_vla.data.features.tokenizer import SpecialToken, load_tokenizer

SPECIAL_TOKENS: tuple[str, ...] = tuple(t.value for t in SpecialToken)

#: Byte-level tokens: 256 byte symbols after the special tokens.
BYTE_VOCAB_SIZE = len(SPECIAL_TOKENS) + len(pre_tokenizers.ByteLevel.alphabet())


def _finish(tokenizer: Tokenizer) -> Tokenizer:
    """Byte-level pre-tokenizer and decoder, special tokens, ``[BOS] $A [EOS]`` template."""
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    bos, eos = SpecialToken.BOS.value, SpecialToken.EOS.value
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, tokenizer.token_to_id(bos)), (eos, tokenizer.token_to_id(eos))]
    )
    return tokenizer


def byte_level_tokenizer() -> Tokenizer:
    """The fallback: one token per UTF-8 byte (``BYTE_VOCAB_SIZE`` ids), no training, no merges."""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    return _finish(Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=SpecialToken.UNK.value)))


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int, *, min_frequency: int = 2) -> Tokenizer:
    """A byte-level BPE tokenizer of at most ``vocab_size`` ids trained on ``texts`` (deterministic).

    Raises:
        ValueError: when ``vocab_size`` cannot hold the special tokens and the 256 bytes.
    """
    if vocab_size < BYTE_VOCAB_SIZE:
        raise ValueError(f"train_bpe_tokenizer.vocab_size: expected >= {BYTE_VOCAB_SIZE} (bytes), got {vocab_size}")
    tokenizer = Tokenizer(models.BPE(unk_token=SpecialToken.UNK.value))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    return _finish(tokenizer)


def load_pretrained_tokenizer(path: str | Path) -> Tokenizer:
    """The ``tokenizer.json`` of a local pretrained language model directory.

    Raises:
        FileNotFoundError: naming the file.
    """
    return load_tokenizer(Path(path) / "tokenizer.json")


def check_vocabulary(tokenizer: Tokenizer, vocab_size: int) -> None:
    """Refuse a tokenizer whose ids exceed the model's ``language.vocab_size``.

    Raises:
        ValueError: naming both sizes.
    """
    if tokenizer.get_vocab_size() > vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.get_vocab_size()} ids, language.vocab_size is {vocab_size}: "
            "raise language.vocab_size or train a smaller tokenizer"
        )
