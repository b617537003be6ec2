"""What the VLA's language model learns to say, and the tokenizer it says it with.

The LM target of a scene is one text: the current frame's scene description (lights, road users, obstacles)
followed by its meta-action, e.g. ``"The light ahead is red. A car is 12 m ahead. Action: slow down."``. The
language model is supervised to state it from pixels through its LM head (teacher forcing); no
non-privileged input ever holds it. ``LanguageTargetBuilder`` turns it into the model's ``lm_target_tokens``
and ``lm_target_mask``.

The tokenizer is chosen by the model config (``language.tokenizer``): ``bpe`` is trained here, offline, on the
training split's navigation instructions and LM target texts (byte-level BPE, at most ``language.vocab_size``
ids); ``byte`` needs no training; ``pretrained`` is the ``tokenizer.json`` of a local pretrained language model.
The training command saves it with every checkpoint (``tokenizer.json``), and the instruction builder of the
agent reads it from there. Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import torch
from tokenizers import Tokenizer

from irl_vla.data.features.instruction import SceneDescriptionTargetBuilder
from irl_vla.data.scene import Scene
from irl_vla.models.vla.config import LanguageConfig
from irl_vla.models.vla.tokenizer import (
    byte_level_tokenizer,
    check_vocabulary,
    load_pretrained_tokenizer,
    train_bpe_tokenizer,
)


def lm_target_text(scene: Scene) -> str:
    """The scene description and the meta-action of the current frame as one text (empty parts left out)."""
    frame = scene.current_frame
    parts = [frame.scene_description.strip()]
    if frame.meta_action is not None:
        parts.append(f"Action: {frame.meta_action.value.replace('_', ' ')}.")
    return " ".join(p for p in parts if p)


@dataclass
class LanguageTargetBuilder(SceneDescriptionTargetBuilder):
    """``lm_target_tokens`` and ``lm_target_mask`` ``(L,)``: ``lm_target_text`` in the model's tokenizer.

    The scene-description builder with the meta-action appended to the text.

    Attributes:
        tokenizer: path of the model's ``tokenizer.json``.
        max_tokens: tokens per text (L, ``language.max_target_tokens``), ``[BOS]`` and ``[EOS]`` included.
    """

    name: ClassVar[str] = "lm_target"
    version: ClassVar[int] = 1
    prefix: ClassVar[str] = "lm_target"  # keys lm_target_tokens, lm_target_mask (TargetKey.LM_TARGET_*)
    max_tokens: int = 48

    @staticmethod
    def scene_text(scene: Scene) -> str:
        """The scene's LM target text (``lm_target_text``)."""
        return lm_target_text(scene)

    def compute(self, scene: Scene) -> dict[str, torch.Tensor]:
        """Tokenise the scene's LM target text."""
        return self.encode(self.scene_text(scene))


def model_tokenizer(cfg: LanguageConfig, texts: Iterable[str]) -> Tokenizer:
    """The language model's tokenizer for ``cfg.tokenizer`` (``texts`` train the ``bpe`` one).

    Raises:
        ValueError: when the tokenizer has more ids than ``cfg.vocab_size``.
        FileNotFoundError: for ``pretrained`` without a ``tokenizer.json`` in ``cfg.pretrained_path``.
    """
    if cfg.tokenizer == "bpe":
        tokenizer = train_bpe_tokenizer(texts, cfg.vocab_size)
    elif cfg.tokenizer == "byte":
        tokenizer = byte_level_tokenizer()
    else:
        assert cfg.pretrained_path is not None  # LanguageConfig checks it
        tokenizer = load_pretrained_tokenizer(cfg.pretrained_path)
    check_vocabulary(tokenizer, cfg.vocab_size)
    return tokenizer
