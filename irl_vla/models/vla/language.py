"""Semantic reasoning: a causal language model (Qwen2 or Llama architecture from ``transformers``).

The model reads one sequence of input embeddings::

    [visual tokens via the adaptor (P)] [ego-status token (1)] [instruction tokens (L)] [meta queries (M)]
    [LM target tokens, teacher forcing (L_t), training only]

The last hidden states of the M meta queries are the **meta tokens** the planner reads. Attention is causal,
so the meta tokens never see the target text; the target text sees the meta tokens, so predicting it (the
scene description and the meta-action, through the LM head) shapes what they carry. Padding of the instruction
and of the target is masked, and position ids skip it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from irl_vla.models.vla.config import LanguageConfig
from irl_vla.models.vla.layers import Attention, FeedForward


def build_causal_lm(cfg: LanguageConfig) -> nn.Module:
    """A ``transformers`` causal LM: loaded from ``cfg.pretrained_path`` (local only) or built from the sizes.

    Raises:
        FileNotFoundError: when ``pretrained_path`` is not a directory.
        ValueError: when a loaded model's vocabulary or width disagrees with the config.
    """
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    if cfg.pretrained_path:
        path = Path(cfg.pretrained_path)
        if not path.is_dir():
            raise FileNotFoundError(f"language.pretrained_path: {path} is not a directory")
        lm = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        got = {"vocab_size": lm.config.vocab_size, "hidden_size": lm.config.hidden_size}
        want = {"vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size}
        if got != want:
            raise ValueError(f"language.pretrained_path {path}: the model has {got}, the config says {want}")
        return lm
    config_class = {"qwen2": Qwen2Config, "llama": LlamaConfig}[cfg.family]
    config = config_class(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_positions,
        rope_theta=cfg.rope_theta,
        tie_word_embeddings=True,
    )
    return AutoModelForCausalLM.from_config(config)


class VisionAdaptor(nn.Module):
    """Visual tokens ``(B, V, D)`` -> ``P`` language-model embeddings ``(B, P, H)``.

    Learned queries, one cross-attention, a feed-forward layer and a projection to the LM width.
    """

    def __init__(self, num_tokens: int, d_model: int, hidden_size: int, num_heads: int, ffn_mult: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_tokens, d_model) * 0.02)
        self.attn = Attention(d_model, num_heads, cross=True)
        self.ffn = FeedForward(d_model, ffn_mult)
        self.proj = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, hidden_size))

    def forward(self, visual: Tensor) -> Tensor:
        """Resample and project."""
        q = self.queries.unsqueeze(0).expand(visual.shape[0], -1, -1)  # (B, P, D)
        return self.proj(self.ffn(self.attn(q, visual)))


class LanguageReasoner(nn.Module):
    """Visual tokens, ego embedding and instruction tokens -> meta tokens (and LM logits of the target text)."""

    def __init__(self, cfg: LanguageConfig, d_model: int, num_heads: int, ffn_mult: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.lm = build_causal_lm(cfg)
        if cfg.freeze_lm:
            self.lm.requires_grad_(False)
        hidden = cfg.hidden_size
        self.adaptor = VisionAdaptor(cfg.num_visual_tokens, d_model, hidden, num_heads, ffn_mult)
        self.ego_proj = nn.Linear(d_model, hidden)
        self.meta_queries = nn.Parameter(torch.randn(cfg.num_meta_tokens, hidden) * 0.02)
        self.meta_proj = nn.Sequential(nn.Linear(hidden, d_model), nn.LayerNorm(d_model))

    def forward(
        self,
        visual: Tensor,
        ego: Tensor,
        instruction: Tensor,
        instruction_mask: Tensor,
        target: Tensor | None = None,
        target_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Run the language model.

        Args:
            visual: visual tokens ``(B, V, D)``.
            ego: ego embedding ``(B, D)``.
            instruction: instruction token ids ``(B, L)``.
            instruction_mask: ``(B, L)`` bool, true on real tokens.
            target: LM target token ids ``(B, L_t)`` (teacher forcing), or ``None``.
            target_mask: ``(B, L_t)`` bool.

        Returns:
            Meta tokens ``(B, M, D)`` and, with a target, logits ``(B, L_t, vocab)`` where position ``i``
            predicts ``target[:, i]``.

        Raises:
            ValueError: when a token id is outside the vocabulary.
        """
        self._check_ids("instruction_tokens", instruction)
        embed = self.lm.get_input_embeddings()
        b = visual.shape[0]
        parts = [
            self.adaptor(visual),  # (B, P, H)
            self.ego_proj(ego).unsqueeze(1),  # (B, 1, H)
            embed(instruction),  # (B, L, H)
            self.meta_queries.unsqueeze(0).expand(b, -1, -1),  # (B, M, H)
        ]
        masks = [
            torch.ones(b, parts[0].shape[1] + 1, dtype=torch.bool, device=visual.device),
            instruction_mask.bool(),
            torch.ones(b, self.cfg.num_meta_tokens, dtype=torch.bool, device=visual.device),
        ]
        if target is not None:
            if target_mask is None:
                raise ValueError("lm target given without its mask")
            self._check_ids("lm_target_tokens", target)
            parts.append(embed(target[:, :-1]))  # (B, L_t - 1, H): the last target token is never an input
            masks.append(target_mask[:, :-1].bool())
        inputs = torch.cat(parts, dim=1)  # (B, S, H)
        mask = torch.cat(masks, dim=1)  # (B, S)
        if inputs.shape[1] > self.cfg.max_positions:
            raise ValueError(
                f"language: sequence of {inputs.shape[1]} tokens exceeds language.max_positions "
                f"{self.cfg.max_positions}"
            )
        positions = (mask.long().cumsum(-1) - 1).clamp_min(0)  # padding does not advance positions
        hidden = self.lm.base_model(
            inputs_embeds=inputs, attention_mask=mask.long(), position_ids=positions
        ).last_hidden_state  # (B, S, H)
        meta_end = parts[0].shape[1] + 1 + instruction.shape[1] + self.cfg.num_meta_tokens
        meta = self.meta_proj(hidden[:, meta_end - self.cfg.num_meta_tokens : meta_end])  # (B, M, D)
        if target is None:
            return meta, None
        # The last meta query predicts target[:, 0]; target input i predicts target[:, i + 1].
        logits = self.lm.get_output_embeddings()(hidden[:, meta_end - 1 :])  # (B, L_t, vocab)
        return meta, logits

    def _check_ids(self, key: str, ids: Tensor) -> None:
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.cfg.vocab_size):
            raise ValueError(
                f"{key}: token ids in [{int(ids.min())}, {int(ids.max())}], language.vocab_size is "
                f"{self.cfg.vocab_size} (build the model for the tokenizer's vocabulary)"
            )
