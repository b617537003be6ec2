import pytest
import torch

from irl_vla.data.enums import MetaAction
from irl_vla.data.features.bev_semantic import BevSemanticClass
from irl_vla.models.vla.model import VLAModel
from irl_vla.models.vla.reasoning3d import NUM_OBJECT_CLASSES
from tests.models.vla.helpers import TINY_VIT, ready_model, synthetic_batch, tiny_config

B = 3


@pytest.fixture(scope="module")
def setup():
    cfg = tiny_config()
    batches = [synthetic_batch(cfg, B, seed) for seed in range(2)]
    return cfg, batches, ready_model(cfg, batches)


def test_training_outputs_have_the_documented_shapes(setup):
    cfg, batches, model = setup
    f, t = batches[0]
    model.train()
    out = model(f, t, generator=torch.Generator().manual_seed(0))
    k, tp = cfg.planner.num_anchors, cfg.inputs.num_poses
    q, sem = cfg.reasoning.num_object_queries, cfg.inputs.bev_height // cfg.reasoning.semantic_stride
    assert out["modes"].shape == (B, k, tp, 3)
    assert out["mode_logits"].shape == (B, k)
    assert out["trajectory"].shape == (B, tp, 3)
    assert out["agent_states"].shape == (B, q, 7)
    assert out["agent_class_logits"].shape == (B, q, NUM_OBJECT_CLASSES)
    assert out["bev_semantic_logits"].shape == (B, len(BevSemanticClass), sem, sem)
    assert out["meta_action_logits"].shape == (B, len(MetaAction))
    assert out["lm_logits"].shape == (B, cfg.language.max_target_tokens, cfg.language.vocab_size)
    best = out["mode_logits"].argmax(-1)
    torch.testing.assert_close(out["trajectory"], out["modes"][torch.arange(B), best])


def test_eval_outputs_and_determinism(setup):
    _cfg, batches, model = setup
    f, _ = batches[0]
    model.eval()
    with torch.no_grad():
        a, b = model(f), model(f)
    # no auxiliary heads by default; the route head's prediction is the planner's input, so it is always there
    assert set(a) == {"modes", "mode_logits", "mode_confidences", "trajectory", "route_centerline"}
    torch.testing.assert_close(a["mode_confidences"], torch.sigmoid(a["mode_logits"]))
    torch.testing.assert_close(a["trajectory"], b["trajectory"], rtol=0, atol=0)
    with torch.no_grad():
        aux = model(f, with_aux=True)
    assert "bev_semantic_logits" in aux and "lm_logits" not in aux


def test_masked_instruction_padding_and_target_text_do_not_leak(setup):
    cfg, batches, model = setup
    f, t = batches[0]
    model.eval()
    g = torch.Generator().manual_seed(5)
    other = dict(f)
    noise = torch.randint(4, cfg.language.vocab_size, f["instruction_tokens"].shape, generator=g)
    other["instruction_tokens"] = torch.where(f["instruction_mask"], f["instruction_tokens"], noise)
    assert not torch.equal(other["instruction_tokens"], f["instruction_tokens"])
    t2 = dict(t)
    t2["lm_target_tokens"] = torch.randint(4, cfg.language.vocab_size, t["lm_target_tokens"].shape, generator=g)
    with torch.no_grad():
        base = model(f, t)
        padded = model(other, t)
        retold = model(f, t2)
    torch.testing.assert_close(padded["modes"], base["modes"], rtol=0, atol=1e-5)  # padding is masked
    torch.testing.assert_close(retold["modes"], base["modes"], rtol=0, atol=1e-5)  # the plan never sees targets
    changed = dict(f)
    changed["instruction_tokens"] = torch.where(f["instruction_mask"], noise, f["instruction_tokens"])
    with torch.no_grad():
        assert not torch.allclose(model(changed)["modes"], base["modes"])  # real tokens matter


def test_bad_features_are_named(setup):
    _, batches, model = setup
    f, _ = batches[0]
    with pytest.raises(ValueError, match="missing 'lidar_bev'"):
        model({k: v for k, v in f.items() if k != "lidar_bev"})
    with pytest.raises(ValueError, match=r"'camera_images' has shape \(3, 1, 2, 3, 16, 64\)"):
        model({**f, "camera_images": f["camera_images"][..., :16, :]})
    with pytest.raises(ValueError, match="'driving_command' has shape"):
        model({**f, "driving_command": f["driving_command"][:2]})
    with pytest.raises(ValueError, match="instruction_tokens: token ids"):
        model({**f, "instruction_tokens": f["instruction_tokens"] + 10_000})


def test_unset_statistics_and_anchors_refuse_to_run(setup):
    cfg, batches, ready = setup
    f, _ = batches[0]
    model = VLAModel(cfg).eval()
    with pytest.raises(RuntimeError, match="ego_status normalisation statistics are not set"):
        model(f)
    model.load_state_dict(ready.state_dict())  # buffers travel with the weights
    model.planner.anchors_set.fill_(False)
    with pytest.raises(RuntimeError, match="anchors are not set"):
        model(f)


def test_without_language_model_the_planner_reads_no_meta_tokens():
    cfg = tiny_config(language={"enabled": False})
    batches = [synthetic_batch(cfg, B, seed) for seed in range(2)]
    model = ready_model(cfg, batches).train()
    f, t = batches[0]
    out = model(f, t)
    assert "meta_action_logits" not in out and model.language is None
    assert all("meta" not in block.cross for block in model.planner.blocks)
    losses = model.compute_loss(out, t)
    assert "lm" not in losses and "meta_action" not in losses
    assert model.parameter_counts()["language_model"] == 0


def test_llama_family_and_transformers_vision_tower():
    cfg = tiny_config(language={"family": "llama"}, vision={"backend": "transformers", "hf_config": TINY_VIT})
    batches = [synthetic_batch(cfg, B, seed) for seed in range(2)]
    model = ready_model(cfg, batches).train()
    assert type(model.language.lm).__name__ == "LlamaForCausalLM"
    assert type(model.vision.tower.model).__name__ == "ViTModel"
    out = model(*batches[0])
    assert out["modes"].shape == (B, cfg.planner.num_anchors, cfg.inputs.num_poses, 3)
    model.compute_loss(out, batches[0][1])["loss"].backward()
    assert model.vision.tower.model.embeddings.patch_embeddings.projection.weight.grad is not None


def test_parameter_counts_cover_every_parameter(setup):
    _, _, model = setup
    counts = model.parameter_counts()
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
    assert all(v > 0 for v in counts.values())
