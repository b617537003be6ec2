"""The three ablations of the VLA are config switches that really remove their part.

- ``language.enabled: false``: no language model (``test_model.py`` checks the model; here its builders);
- ``reasoning.aux_heads: false``: no box, class and BEV semantic heads, terms or targets;
- ``planner.head: regression``: one mode regressed without noise or denoising steps.
"""

import pytest
import torch

from irl_vla.models.vla.regression import RegressionPlanner
from irl_vla.training.policy import builder_params
from tests.models.vla.helpers import ready_model, synthetic_batch, tiny_config

B = 3
AUX_OUTPUTS = {"agent_states", "agent_class_logits", "bev_semantic_logits"}
AUX_TERMS = {"agent_class", "agent_box", "bev_semantic"}


def _trained_step(cfg):
    batches = [synthetic_batch(cfg, B, seed) for seed in range(2)]
    model = ready_model(cfg, batches).train()
    f, t = batches[0]
    out = model(f, t, generator=torch.Generator().manual_seed(0))
    losses = model.compute_loss(out, t)
    losses["loss"].backward()
    return model, batches, out, losses


def test_without_aux_heads_no_box_class_or_map_head_term_or_target():
    full, _, full_out, full_losses = _trained_step(tiny_config())
    model, _, out, losses = _trained_step(tiny_config(reasoning={"aux_heads": False}))
    assert set(full_out) >= AUX_OUTPUTS and set(full_losses) >= AUX_TERMS  # the switch is what removes them
    assert not AUX_OUTPUTS & set(out) and not AUX_TERMS & set(losses)
    assert model.reasoning.box_head is None and model.reasoning.class_head is None and model.reasoning.semantic is None
    assert model.parameter_counts()["reasoning3d"] < full.parameter_counts()["reasoning3d"]
    # the object and map tokens stay, learned from the planning loss alone
    assert model.reasoning.objects.queries.grad is not None
    _, targets = builder_params(tiny_config(reasoning={"aux_heads": False}), ["cam_f0", "cam_b0"])
    assert "agents" not in targets and "bev_semantic_map" not in targets and "trajectory" in targets


def test_without_language_model_no_instruction_or_text_builders():
    features, targets = builder_params(tiny_config(language={"enabled": False}), ["cam_f0", "cam_b0"])
    assert "navigation_instruction" not in features
    assert not {"meta_action", "scene_description"} & set(targets)
    features, targets = builder_params(tiny_config(), ["cam_f0", "cam_b0"])
    assert "navigation_instruction" in features and "meta_action" in targets


def test_regression_head_regresses_one_mode_without_noise():
    cfg = tiny_config(planner={"head": "regression"}, ego_history_dropout=0.0)  # no draws but the planner's
    model, batches, out, losses = _trained_step(cfg)
    assert isinstance(model.planner, RegressionPlanner) and cfg.planner.num_modes == 1
    f, t = batches[0]
    tp = cfg.inputs.num_poses
    assert out["modes"].shape == (B, 1, tp, 3) and model.planner.anchors.shape == (1, tp, 3)
    assert "trajectory_cls" not in losses and losses["trajectory_reg"] > 0
    # the anchor is the mean expert trajectory (K-means with one cluster)
    torch.testing.assert_close(
        model.planner.anchors[0, :, :2], torch.cat([t["trajectory"] for _, t in batches])[:, :, :2].mean(0)
    )
    # no diffusion: training outputs do not depend on the noise generator, unlike the diffusion head's
    a = model(f, t, generator=torch.Generator().manual_seed(1))["modes"]
    b = model(f, t, generator=torch.Generator().manual_seed(2))["modes"]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    diffusion, _, _, _ = _trained_step(tiny_config())
    da = diffusion(f, t, generator=torch.Generator().manual_seed(1))["modes"]
    db = diffusion(f, t, generator=torch.Generator().manual_seed(2))["modes"]
    assert not torch.allclose(da, db)
    model.eval()
    with torch.no_grad():
        plan = model(f)
        train_mode = model.train()(f, t)
    torch.testing.assert_close(plan["trajectory"], train_mode["trajectory"])  # one pass, same in both modes
    with pytest.raises(ValueError, match="regression has no stochastic chains"):
        model.eval()(f, stochastic=True)


def test_unknown_planner_head_is_named():
    with pytest.raises(ValueError, match="PlannerConfig.head: expected one of"):
        tiny_config(planner={"head": "mlp"})
