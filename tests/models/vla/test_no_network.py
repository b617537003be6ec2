"""No network access while models are built, loaded from local weights, run and trained (sockets blocked)."""

import socket

import pytest
import torch

from irl_vla.data.features.tokenizer import save_tokenizer
from irl_vla.models.vla.tokenizer import load_pretrained_tokenizer, train_bpe_tokenizer
from tests.models.vla.helpers import TINY_VIT, ready_model, synthetic_batch, tiny_config


class NetworkAttempt(AssertionError):
    pass


@pytest.fixture
def no_sockets(monkeypatch):
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise NetworkAttempt(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts
    assert not attempts, attempts


def test_blocking_works(no_sockets):
    with pytest.raises(NetworkAttempt):
        socket.create_connection(("localhost", 9))
    no_sockets.clear()


def test_build_train_and_plan_without_network(no_sockets, tmp_path):
    tokenizer = train_bpe_tokenizer(["turn left at the next intersection in 35 m"] * 5, vocab_size=300)
    save_tokenizer(tokenizer, tmp_path / "tokenizer.json")
    cfg = tiny_config(language={"vocab_size": 300}, vision={"backend": "transformers", "hf_config": TINY_VIT})
    batches = [synthetic_batch(cfg, 2, seed) for seed in range(2)]
    model = ready_model(cfg, batches).train()
    out = model(*batches[0])
    model.compute_loss(out, batches[0][1])["loss"].backward()
    model.eval()
    with torch.no_grad():
        model(batches[0][0], stochastic=True)


def test_pretrained_language_model_tokenizer_and_vision_tower_load_from_local_paths(no_sockets, tmp_path):
    # Make "pretrained" weights locally (random), as a user's downloaded checkpoint would be laid out.
    cfg = tiny_config(language={"vocab_size": 300}, vision={"backend": "transformers", "hf_config": TINY_VIT})
    source = ready_model(cfg, [synthetic_batch(cfg, 2, s) for s in range(2)])
    lm_dir, vit_dir = tmp_path / "lm", tmp_path / "vit"
    source.language.lm.save_pretrained(lm_dir)
    source.vision.tower.model.save_pretrained(vit_dir)
    save_tokenizer(train_bpe_tokenizer(["keep straight for 200 m"] * 5, vocab_size=280), lm_dir / "tokenizer.json")

    loaded_cfg = tiny_config(
        language={"vocab_size": 300, "pretrained_path": str(lm_dir), "tokenizer": "pretrained"},
        vision={"backend": "transformers", "pretrained_path": str(vit_dir), "freeze_tower": True},
    )
    model = ready_model(loaded_cfg, [synthetic_batch(loaded_cfg, 2, s) for s in range(2)])
    for name, value in source.language.lm.state_dict().items():
        torch.testing.assert_close(model.language.lm.state_dict()[name], value, rtol=0, atol=0)
    for name, value in source.vision.tower.model.state_dict().items():
        torch.testing.assert_close(model.vision.tower.model.state_dict()[name], value, rtol=0, atol=0)
    assert not any(p.requires_grad for p in model.vision.tower.parameters())
    assert load_pretrained_tokenizer(lm_dir).get_vocab_size() <= 280

    with pytest.raises(ValueError, match="the config says"):
        ready_model(tiny_config(language={"pretrained_path": str(lm_dir)}), [])
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        ready_model(tiny_config(language={"vocab_size": 300, "pretrained_path": str(tmp_path / "none")}), [])
