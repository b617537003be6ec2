"""The VLA's LM target text and its builder; the language model's tokenizer chosen by the model config."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from irl_vla.data.features.tokenizer import save_tokenizer
from irl_vla.data.split import SceneLoader
from irl_vla.models.vla.config import LanguageConfig, TargetKey
from irl_vla.training.language_targets import LanguageTargetBuilder, lm_target_text, model_tokenizer


def test_the_target_states_the_description_then_the_action(source: partial[SceneLoader], tmp_path: Path) -> None:
    scene = source().get_scene(source().tokens[0])
    frame = scene.current_frame
    assert frame.scene_description and frame.meta_action is not None
    text = lm_target_text(scene)
    assert text.startswith(frame.scene_description.strip())
    assert text.endswith(f"Action: {frame.meta_action.value.replace('_', ' ')}.")
    path = tmp_path / "tokenizer.json"
    save_tokenizer(model_tokenizer(LanguageConfig(tokenizer="byte", vocab_size=300), []), path)
    builder = LanguageTargetBuilder(tokenizer=str(path), max_tokens=400)
    out = builder.check(builder.compute(scene), "test")
    assert set(out) == {TargetKey.LM_TARGET_TOKENS.value, TargetKey.LM_TARGET_MASK.value}
    assert int(out[TargetKey.LM_TARGET_MASK.value].sum()) == len(text.encode()) + 2  # bytes + [BOS] + [EOS]


def test_bpe_is_trained_within_the_vocabulary_and_a_too_small_one_is_refused(source: partial[SceneLoader]) -> None:
    loader = source()
    texts = [lm_target_text(loader.get_scene(t)) for t in loader.tokens]
    bpe = model_tokenizer(LanguageConfig(tokenizer="bpe", vocab_size=300), texts * 5)
    assert 260 < bpe.get_vocab_size() <= 300
    assert len(bpe.encode(texts[0]).ids) < len(texts[0].encode())  # merges shorten the text
    with pytest.raises(ValueError, match="vocab_size"):
        model_tokenizer(LanguageConfig(tokenizer="byte", vocab_size=100), [])
