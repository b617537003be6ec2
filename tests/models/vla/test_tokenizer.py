import pytest

from irl_vla.data.features.instruction import TextTokens
from irl_vla.data.features.tokenizer import SpecialToken, load_tokenizer, save_tokenizer
from irl_vla.models.vla.tokenizer import (
    BYTE_VOCAB_SIZE,
    byte_level_tokenizer,
    check_vocabulary,
    train_bpe_tokenizer,
)

CORPUS = [
    "Turn left at the next intersection in 35 m.",
    "Turn right at the next intersection in 120 m.",
    "Keep straight for 200 m.",
    "The light ahead is red. A vehicle is 12 m ahead at 20 km/h. Action: slow down.",
    "The light ahead is green. A pedestrian crosses 18 m ahead. Action: stop.",
] * 20


def test_bpe_trains_offline_and_round_trips(tmp_path):
    tok = train_bpe_tokenizer(CORPUS, vocab_size=400)
    assert BYTE_VOCAB_SIZE < tok.get_vocab_size() <= 400
    for special in SpecialToken:  # ids shared with the feature builders' tokenizer
        assert tok.token_to_id(special.value) == list(SpecialToken).index(special)
    text = "Turn left at the next intersection in 35 m."
    enc = tok.encode(text)
    assert enc.ids[0] == tok.token_to_id("[BOS]") and enc.ids[-1] == tok.token_to_id("[EOS]")
    assert len(enc.ids) < len(text.encode()) / 2  # merges make it much shorter than bytes
    unseen = "Zürich: überholen 🚗, then merge!"
    assert tok.decode(tok.encode(unseen).ids) == unseen  # byte-level: no unknown tokens, exact
    path = tmp_path / "tokenizer.json"
    save_tokenizer(tok, path)
    assert load_tokenizer(path).encode(text).ids == enc.ids
    assert train_bpe_tokenizer(CORPUS, vocab_size=400).to_str() == tok.to_str()  # deterministic


def test_byte_fallback_needs_no_training_and_round_trips(tmp_path):
    tok = byte_level_tokenizer()
    assert tok.get_vocab_size() == BYTE_VOCAB_SIZE
    text = "Keep straight for 200 m, ça va? 🚦"
    ids = tok.encode(text).ids
    assert len(ids) == len(text.encode()) + 2
    assert tok.decode(ids) == text
    path = tmp_path / "tokenizer.json"
    save_tokenizer(tok, path)
    ids_t, mask = TextTokens(str(path), max_tokens=20).encode("Keep straight")  # the feature builders read it
    assert ids_t.shape == (20,) and int(mask.sum()) == len("Keep straight") + 2


def test_vocabulary_check():
    check_vocabulary(byte_level_tokenizer(), BYTE_VOCAB_SIZE)
    with pytest.raises(ValueError, match="language.vocab_size is 100"):
        check_vocabulary(byte_level_tokenizer(), 100)
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe_tokenizer(CORPUS, vocab_size=100)
