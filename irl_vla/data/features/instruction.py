"""Text as tokens: the navigation instruction (a policy input) and the scene description (a language target)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import torch
from tokenizers import Tokenizer

from irl_vla.data.features.builder import FeatureBuilder, TargetBuilder, TensorSpec
from irl_vla.data.features.tokenizer import SpecialToken, load_tokenizer, tokenizer_hash
from irl_vla.data.scene import AgentInput, Scene


def navigation_instruction(agent_input: AgentInput) -> str:
    """The navigation instruction an agent input carries."""
    return agent_input.instruction


@dataclass
class TextTokens:
    """Encodes text to a fixed number of token ids with a mask (truncating, padding with ``[PAD]``).

    Attributes:
        tokenizer: path of the ``tokenizer.json`` to use.
        max_tokens: tokens per text (L), ``[BOS]`` and ``[EOS]`` included.
    """

    tokenizer: str = ""
    max_tokens: int = 48

    def __post_init__(self) -> None:
        if not self.tokenizer:
            raise ValueError("tokenizer: path of a tokenizer.json required (irl-vla cache builds one)")
        if self.max_tokens < 3:
            raise ValueError(f"max_tokens: expected >= 3 ([BOS], a word, [EOS]), got {self.max_tokens}")

    @cached_property
    def loaded(self) -> Tokenizer:
        """The tokenizer, read once, padding and truncating to ``max_tokens``."""
        tok = load_tokenizer(self.tokenizer)
        pad = SpecialToken.PAD.value
        tok.enable_padding(length=self.max_tokens, pad_id=tok.token_to_id(pad), pad_token=pad)
        tok.enable_truncation(max_length=self.max_tokens)
        return tok

    def encode(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids ``(L,)`` int64 and mask ``(L,)`` bool (true on real tokens)."""
        enc = self.loaded.encode(text)
        return torch.tensor(enc.ids, dtype=torch.int64), torch.tensor(np.array(enc.attention_mask, dtype=bool))

    def fingerprint_params(self) -> dict[str, Any]:
        """Parameters for a builder fingerprint: the tokenizer's content, not its path."""
        return {"tokenizer_sha256": tokenizer_hash(self.tokenizer), "max_tokens": self.max_tokens}


class TokensBuilder:
    """What the text builders share: ``<prefix>_tokens`` and ``<prefix>_mask``, both ``(L,)``, encoding one text.

    ``encode`` gives a builder's outputs for a text known without the scene (stage 1's preparation has every text
    already, from the pass that trains the tokenizer).
    """

    prefix: ClassVar[str]
    tokenizer: str
    max_tokens: int

    def __post_init__(self) -> None:
        self._text = TextTokens(self.tokenizer, self.max_tokens)

    def params(self) -> dict[str, Any]:
        """Tokenizer content hash and length (a new tokenizer makes cached tokens stale)."""
        return self._text.fingerprint_params()

    def specs(self) -> dict[str, TensorSpec]:
        """``<prefix>_tokens`` ``(L,)`` and ``<prefix>_mask`` ``(L,)``."""
        return {
            f"{self.prefix}_tokens": TensorSpec(("L",), torch.int64, "token ids, [BOS] ... [EOS] then [PAD]"),
            f"{self.prefix}_mask": TensorSpec(("L",), torch.bool, "true on real tokens"),
        }

    def dims(self) -> dict[str, int]:
        """L tokens."""
        return {"L": self.max_tokens}

    @staticmethod
    def scene_text(scene: Scene) -> str:
        """The text the builder encodes for ``scene`` (what ``compute`` encodes, read from the whole scene)."""
        raise NotImplementedError

    def encode(self, text: str) -> dict[str, torch.Tensor]:
        """The outputs for ``text``."""
        ids, mask = self._text.encode(text)
        return {f"{self.prefix}_tokens": ids, f"{self.prefix}_mask": mask}


@dataclass
class InstructionTokensBuilder(TokensBuilder, FeatureBuilder):
    """The navigation instruction as token ids and a mask.

    Attributes:
        tokenizer: path of the ``tokenizer.json``.
        max_tokens: tokens per instruction (L).
    """

    name: ClassVar[str] = "navigation_instruction"
    version: ClassVar[int] = 1
    prefix: ClassVar[str] = "instruction"
    tokenizer: str = ""
    max_tokens: int = 48

    @staticmethod
    def scene_text(scene: Scene) -> str:
        """The scene's navigation instruction."""
        return navigation_instruction(scene.get_agent_input())

    def compute(self, agent_input: AgentInput) -> dict[str, torch.Tensor]:
        """Tokenise the instruction."""
        return self.encode(navigation_instruction(agent_input))


@dataclass
class SceneDescriptionTargetBuilder(TokensBuilder, TargetBuilder):
    """The current frame's scene description (lights, road users, obstacles) as token ids: a language target.

    Attributes:
        tokenizer: path of the ``tokenizer.json`` (the instruction tokenizer: one vocabulary).
        max_tokens: tokens per description (L).
    """

    name: ClassVar[str] = "scene_description"
    version: ClassVar[int] = 1
    prefix: ClassVar[str] = "scene_description"
    tokenizer: str = ""
    max_tokens: int = 64

    @staticmethod
    def scene_text(scene: Scene) -> str:
        """The current frame's description (empty where the source has none: NAVSIM logs)."""
        return scene.current_frame.scene_description

    def compute(self, scene: Scene) -> dict[str, torch.Tensor]:
        """Tokenise the description."""
        return self.encode(self.scene_text(scene))
