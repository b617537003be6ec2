"""The reward world model: head shapes, expected sub-scores, the reward through the one aggregation function
(against hand-computed values), independence of candidates, normalisation and loading."""

from __future__ import annotations

import math

import pytest
import torch

from irl_vla.labeling.store import CandidateSource
from irl_vla.models.reward.config import RewardModelConfig, load_reward_config
from irl_vla.models.reward.heads import BINARY, TERNARY, HeadKey, SubScoreHeads
from irl_vla.models.reward.loss import RewardKey, RewardTarget
from irl_vla.models.reward.model import RewardWorldModel, compute_reward_normalization
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore

B, K, T = 2, 5, 8


def features(b: int = B, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "ego_status": torch.randn(b, 4, 7, generator=g),
        "driving_command": torch.eye(4)[:b],
        "lidar_bev": torch.rand(b, 1, 2, 128, 128, generator=g),
        "bev_semantic_map": torch.randint(0, 8, (b, 128, 128), generator=g),
        "agent_states": torch.randn(b, 30, 7, generator=g),
        "agent_mask": torch.rand(b, 30, generator=g) > 0.5,
    }


def model(**overrides) -> RewardWorldModel:
    torch.manual_seed(0)
    m = RewardWorldModel(load_reward_config("tiny", overrides))
    traj = torch.randn(4, K, T, 3)
    m.set_normalization(compute_reward_normalization(features(4)["ego_status"], traj))
    return m.eval()


def test_default_yaml_equals_the_dataclass_defaults() -> None:
    assert load_reward_config("default") == RewardModelConfig()


def test_head_shapes_and_expected_sub_scores_in_unit_interval() -> None:
    m = model()
    with torch.no_grad():
        out = m.predict_sub_scores(features(), torch.randn(B, K, T, 3))
    assert out[HeadKey.SUB_SCORES].shape == (B, K, NUM_SUB_SCORES)
    assert out[HeadKey.TERNARY_LOGITS].shape == (B, K, len(TERNARY), 3)
    assert out[HeadKey.BINARY_LOGITS].shape == (B, K, len(BINARY))
    assert out[HeadKey.EP_LOGIT].shape == (B, K)
    assert out[RewardKey.REWARD].shape == (B, K)
    sub = out[HeadKey.SUB_SCORES]
    assert bool(torch.isfinite(sub).all()) and float(sub.min()) >= 0 and float(sub.max()) <= 1


def test_without_an_ec_head_ec_is_nan_and_drops_from_the_reward() -> None:
    m = model(predict_ec=False)
    out = m.predict_sub_scores(features(), torch.randn(B, K, T, 3))
    assert out[HeadKey.BINARY_LOGITS].shape == (B, K, len(BINARY) - 1)
    assert bool(torch.isnan(out[HeadKey.SUB_SCORES][..., SubScore.EC]).all())
    assert bool(torch.isfinite(out[RewardKey.REWARD]).all())


def test_expected_values_and_reward_against_hand_computed_values() -> None:
    heads = SubScoreHeads(4, 4, predict_ec=True)
    # NC: p = (0.2, 0.3, 0.5) -> 0.3 * 0.5 + 0.5 = 0.65 ; DDC: certain 1
    ternary = torch.log(torch.tensor([[[[0.2, 0.3, 0.5], [1e-9, 1e-9, 1.0]]]]))  # (1, 1, 2, 3)
    probs = {SubScore.DAC: 0.9, SubScore.TLC: 1.0 - 1e-7, SubScore.TTC: 0.5, SubScore.LK: 0.25, SubScore.HC: 0.75}
    probs[SubScore.EC] = 0.6
    binary = torch.logit(torch.tensor([[[probs[s] for s in BINARY]]], dtype=torch.float64)).float()
    ep = torch.logit(torch.tensor([[0.8]], dtype=torch.float64)).float()
    sub = heads.expected(ternary, binary, ep)[0, 0]
    assert float(sub[SubScore.NC]) == pytest.approx(0.65, abs=1e-6)
    assert float(sub[SubScore.DDC]) == pytest.approx(1.0, abs=1e-6)
    assert float(sub[SubScore.EP]) == pytest.approx(0.8, abs=1e-6)
    for s, p in probs.items():
        assert float(sub[s]) == pytest.approx(p, abs=1e-6)
    from irl_vla.scoring.aggregation import aggregate

    # EPDMS by hand: NC * DAC * DDC * TLC * (5 EP + 5 TTC + 2 LK + 2 HC + 2 EC) / 16
    expected = 0.65 * 0.9 * 1.0 * 1.0 * (5 * 0.8 + 5 * 0.5 + 2 * 0.25 + 2 * 0.75 + 2 * 0.6) / 16
    assert float(aggregate(sub.double())) == pytest.approx(expected, abs=1e-5)
    sub_no_ec = sub.clone()
    sub_no_ec[SubScore.EC] = math.nan
    expected14 = 0.65 * 0.9 * (5 * 0.8 + 5 * 0.5 + 2 * 0.25 + 2 * 0.75) / 14
    assert float(aggregate(sub_no_ec.double())) == pytest.approx(expected14, abs=1e-5)


def test_reward_is_the_aggregation_of_the_predicted_sub_scores_and_differentiable() -> None:
    from irl_vla.scoring.aggregation import aggregate

    m = model()
    traj = torch.randn(B, K, T, 3, requires_grad=True)
    out = m.predict_sub_scores(features(), traj)
    torch.testing.assert_close(out[RewardKey.REWARD], aggregate(out[HeadKey.SUB_SCORES]))
    out[RewardKey.REWARD].sum().backward()
    assert traj.grad is not None and float(traj.grad.abs().sum()) > 0


def test_a_candidate_score_does_not_depend_on_the_others_and_the_scene_is_encoded_once() -> None:
    m = model()
    f = features()
    traj = torch.randn(B, K, T, 3)
    scene = m.encode_scene(f)
    full = m.score_candidates(scene, traj)[HeadKey.SUB_SCORES]
    part = m.score_candidates(scene, traj[:, 1:3])[HeadKey.SUB_SCORES]
    torch.testing.assert_close(full[:, 1:3], part, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m.predict_sub_scores(f, traj)[HeadKey.SUB_SCORES], full)


def test_the_scene_changes_the_prediction() -> None:
    m = model()
    traj = torch.randn(1, K, T, 3)
    a = m.predict_sub_scores(features(1, seed=1), traj)[HeadKey.SUB_SCORES]
    b = m.predict_sub_scores(features(1, seed=2), traj)[HeadKey.SUB_SCORES]
    assert not torch.allclose(a, b)


def test_refuses_without_statistics_or_inputs() -> None:
    m = RewardWorldModel(load_reward_config("tiny"))
    with pytest.raises(ValueError, match="never set"):
        m.predict_sub_scores(features(), torch.randn(B, K, T, 3))
    m = model()
    f = features()
    del f["bev_semantic_map"]
    with pytest.raises(KeyError, match="bev_semantic_map"):
        m.encode_scene(f)


def test_training_forward_draws_candidates_with_the_expert_and_the_loss_is_finite() -> None:
    m = model(train_candidates=3).train()
    k = 7
    sources = torch.full((B, k), int(CandidateSource.VOCABULARY))
    sources[:, 4] = CandidateSource.EXPERT
    sub = torch.rand(B, k, NUM_SUB_SCORES).round()
    sub[..., SubScore.EP] = torch.rand(B, k)
    sub[0, :, SubScore.EC] = math.nan
    targets = {
        RewardTarget.CANDIDATES: torch.randn(B, k, T, 3),
        RewardTarget.SUB_SCORES: sub,
        RewardTarget.EPDMS: torch.rand(B, k),
        RewardTarget.SOURCES: sources,
    }
    out = m(features(), targets, generator=torch.Generator().manual_seed(3))
    index = out[RewardKey.CANDIDATE_INDEX]
    assert index.shape == (B, 3) and bool((index == 4).any(dim=1).all())
    terms = m.compute_loss(out, targets)
    for name in ("distillation", "irl", "ep_ranking", "score", "loss", "distill_NC", "distill_EC", "distill_EP"):
        assert math.isfinite(float(terms[name])), name
    terms["loss"].backward()
    m.eval()
    assert m(features(), targets)[RewardKey.CANDIDATE_INDEX].shape == (B, k)


def test_irl_term_is_zero_when_the_expert_outscores_worse_candidates_by_the_margin() -> None:
    from irl_vla.models.reward.config import RewardLossConfig
    from irl_vla.models.reward.loss import reward_loss

    cfg = RewardLossConfig(irl_margin=1.0, irl_min_gap=0.05)
    reward = torch.tensor([[0.9, 0.5, 0.88]])  # expert first
    epdms = torch.tensor([[0.9, 0.6, 0.89]])  # candidate 1 is worse by 0.3, candidate 2 within min gap
    preds = {
        RewardKey.CANDIDATE_INDEX: torch.arange(3)[None],
        RewardKey.REWARD: reward,
        HeadKey.SUB_SCORES: torch.full((1, 3, NUM_SUB_SCORES), 0.5),
        HeadKey.TERNARY_LOGITS: torch.zeros(1, 3, 2, 3),
        HeadKey.BINARY_LOGITS: torch.zeros(1, 3, len(BINARY)),
        HeadKey.EP_LOGIT: torch.zeros(1, 3),
    }
    targets = {
        RewardTarget.SUB_SCORES: torch.full((1, 3, NUM_SUB_SCORES), 1.0),
        RewardTarget.EPDMS: epdms,
        RewardTarget.SOURCES: torch.tensor([[CandidateSource.EXPERT, CandidateSource.VOCABULARY, 1]]),
    }
    # margin 0.3 needed, reward gap 0.4: no loss
    assert float(reward_loss(preds, targets, cfg, BINARY)["irl"]) == pytest.approx(0.0)
    preds[RewardKey.REWARD] = torch.tensor([[0.9, 0.8, 0.88]])  # gap 0.1 < 0.3 -> 0.2
    assert float(reward_loss(preds, targets, cfg, BINARY)["irl"]) == pytest.approx(0.2, abs=1e-6)


def test_listwise_term_is_zero_at_the_simulators_ranking_and_pushes_down_the_model_s_wrong_favourite() -> None:
    from irl_vla.models.reward.config import RewardLossConfig
    from irl_vla.models.reward.loss import listwise_kl, reward_loss

    epdms = torch.tensor([[1.0, 0.0, 0.9, 0.5]])
    assert float(listwise_kl(epdms.clone(), epdms, 0.05)) == pytest.approx(0.0, abs=1e-7)
    # the model's favourite (candidate 1) is one the simulator rates 0: the largest push of all goes down on it
    reward = torch.tensor([[0.95, 0.99, 0.9, 0.5]], requires_grad=True)
    loss = listwise_kl(reward, epdms, 0.05)
    assert float(loss) > 0.5
    loss.backward()
    assert reward.grad is not None
    assert int(reward.grad.argmax()) == 1 and float(reward.grad[0, 1]) > 0 > float(reward.grad[0, 0])
    # a plain shift of every reward changes nothing (only the order and the gaps count)
    assert float(listwise_kl(epdms + 0.3, epdms, 0.05)) == pytest.approx(0.0, abs=1e-6)
    # it enters the loss by its weight
    preds = {
        RewardKey.CANDIDATE_INDEX: torch.arange(4)[None],
        RewardKey.REWARD: reward.detach(),
        HeadKey.SUB_SCORES: torch.full((1, 4, NUM_SUB_SCORES), 0.5),
        HeadKey.TERNARY_LOGITS: torch.zeros(1, 4, 2, 3),
        HeadKey.BINARY_LOGITS: torch.zeros(1, 4, len(BINARY)),
        HeadKey.EP_LOGIT: torch.zeros(1, 4),
    }
    targets = {
        RewardTarget.SUB_SCORES: torch.full((1, 4, NUM_SUB_SCORES), 1.0),
        RewardTarget.EPDMS: epdms,
        RewardTarget.SOURCES: torch.full((1, 4), int(CandidateSource.VOCABULARY)),
    }
    off = reward_loss(preds, targets, RewardLossConfig(listwise=0.0), BINARY)
    on = reward_loss(preds, targets, RewardLossConfig(listwise=2.0), BINARY)
    assert float(on["loss"] - off["loss"]) == pytest.approx(2.0 * float(loss), rel=1e-5)
    with pytest.raises(ValueError, match="listwise_temperature"):
        RewardLossConfig(listwise_temperature=0.0)


def test_light_decoder_scores_each_candidate_alone_against_one_pooled_scene() -> None:
    m = model(decoder="light", sample_stem=False, agent_clearance=True)
    attention = model(agent_clearance=True)
    assert sum(p.numel() for p in m.parameters()) < sum(p.numel() for p in attention.parameters()) / 2
    assert not hasattr(m, "blocks") and not hasattr(m.scene_encoder, "map_decoder")
    assert not hasattr(m.scene_encoder, "stem")
    f = features()
    traj = torch.randn(B, K, T, 3) * 5
    with torch.no_grad():
        scene = m.encode_scene(f)
        assert scene.meta.shape == (B, 1, m.cfg.d_model) and scene.objects.shape[1] == 0  # one summary, no tokens
        out = m.score_candidates(scene, traj)
        part = m.score_candidates(scene, traj[:, 2:4])
        moved = dict(f, agent_states=f["agent_states"] + 3.0)
        other = m.predict_sub_scores(moved, traj)
    assert out[HeadKey.SUB_SCORES].shape == (B, K, NUM_SUB_SCORES)
    assert out[HeadKey.TERNARY_LOGITS].shape == (B, K, len(TERNARY), 3)
    assert out[HeadKey.BINARY_LOGITS].shape == (B, K, len(BINARY)) and out[HeadKey.EP_LOGIT].shape == (B, K)
    torch.testing.assert_close(out[HeadKey.SUB_SCORES][:, 2:4], part[HeadKey.SUB_SCORES], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out[RewardKey.REWARD], other[RewardKey.REWARD])  # the boxes reach the prediction
    # a training step reaches every part of the light path
    sources = torch.full((B, K), int(CandidateSource.VOCABULARY))
    sources[:, 0] = CandidateSource.EXPERT
    targets = {
        RewardTarget.CANDIDATES: traj,
        RewardTarget.SUB_SCORES: torch.rand(B, K, NUM_SUB_SCORES).round(),
        RewardTarget.EPDMS: torch.rand(B, K),
        RewardTarget.SOURCES: sources,
    }
    m.train()
    m.compute_loss(m(f, targets), targets)["loss"].backward()
    for name in (
        "light_input.weight",
        "light_classes",
        "light_scene.weight",
        "light_hidden.weight",
        "heads.linear.weight",
        "scene_encoder.raster_proj.weight",
        "scene_encoder.object_embed.0.weight",
        "scene_encoder.meta_embed.0.weight",
    ):
        grad = dict(m.named_parameters())[name].grad
        assert grad is not None and float(grad.abs().sum()) > 0, name


def test_the_light_size_and_an_unknown_decoder() -> None:
    cfg = load_reward_config("light")
    assert (cfg.decoder, cfg.sample_stem, cfg.agent_clearance) == ("light", False, True)
    with pytest.raises(ValueError, match="decoder"):
        load_reward_config("tiny", {"decoder": "transformer"})


def test_the_light_look_up_reads_the_cell_under_each_point_as_nearest_sampling_does() -> None:
    m = model(decoder="light", sample_stem=False)
    attention = model()
    f = features()
    traj = torch.randn(B, K, T, 3) * 20  # some points off the 64 m raster
    with torch.no_grad():
        scene = m.encode_scene(f)
        px, py = m._points(traj)
        cell, inside = m._cells(px, py)
        lidar, classes = m._look_up(scene, cell, inside)  # (B, K, T P C), (B, K, T, P)
        one_hot = torch.nn.functional.one_hot(classes, 8).float() * inside[..., None]  # (B, K, T, P, C)
        looked_up = torch.cat([lidar.view(B, K, T, -1, 2), one_hot], -1).flatten(2)  # the layout of _sample
        raster = attention.scene_encoder.raster(f).contiguous()  # the one-hot raster (B, C, H, W)
        # the points moved to the centre of their 0.5 m cell: grid_sample's nearest mode reads the same cells
        cx, cy = (((v * 2).floor() + 0.5) / 2 for v in (px, py))
        nearest = torch.nn.functional.grid_sample(raster, m._grid(cx, cy), mode="nearest", align_corners=False)
        assert torch.equal(m._cells(cx, cy)[0], cell)
    assert looked_up.shape == m._sample(raster, m._grid(px, py)).shape
    torch.testing.assert_close(looked_up, nearest.permute(0, 2, 3, 1).reshape(B, K, -1))
    assert bool((~inside).any()) and bool(inside.any())
    # the pooled scene: each map class's share of each grid cell, summing to one
    rows, cols = m.cfg.bev_grid
    shares = m.scene_encoder._class_shares(f["bev_semantic_map"], rows, cols)
    torch.testing.assert_close(shares.sum(-1), torch.ones(B, rows, cols))
    assert shares[1, 0, 1, 3] == (f["bev_semantic_map"][1, :32, 32:64] == 3).float().mean()


@pytest.mark.parametrize("extras", [False, True])
def test_the_light_inputs_of_the_compiled_loop_equal_the_torch_ones(extras: bool) -> None:
    more = {"agent_clearance": True, "inputs": {"use_red_lights": True}} if extras else {}
    m = model(decoder="light", sample_stem=False, **more)
    f = features()
    f["red_light_map"] = torch.rand(B, 1 + T, 128, 128) > 0.7
    gen = torch.Generator().manual_seed(5)
    turning = torch.randn(B, 40, T, 3, generator=gen) * torch.tensor([20.0, 20.0, 1.0])  # some points off the raster
    # axis-aligned poses a quarter cell inside a cell: every outline point is far from a cell edge in any precision
    grid_x = (torch.randint(-70, 70, (B, 40, T), generator=gen) + 0.5) / 2
    grid_y = (torch.randint(-70, 70, (B, 40, T), generator=gen) + 0.5) / 2
    aligned = torch.stack([grid_x, grid_y, torch.zeros_like(grid_x)], -1)
    with torch.no_grad():
        scene = m.encode_scene(f)
        for traj, exact in ((aligned, True), (turning, False)):
            dense, rows, weights = m._light_inputs(scene, traj, compiled=True)
            ref_dense, ref_rows, ref_weights = m._light_inputs_torch(scene, traj)
            assert dense.shape == ref_dense.shape and rows.shape == ref_rows.shape
            same_cells = (rows == ref_rows).float().mean()
            assert same_cells == 1.0 if exact else same_cells > 0.995  # float32 vs float64 at a cell edge: rare
            if exact:
                torch.testing.assert_close(dense, ref_dense, atol=1e-5, rtol=1e-5)
                assert torch.equal(weights, ref_weights) and bool((weights == 0).any())
            else:
                pose_cols = T * 5
                torch.testing.assert_close(dense[..., :pose_cols], ref_dense[..., :pose_cols], atol=1e-5, rtol=1e-5)
        out = m.score_candidates(scene, aligned)["reward"]
        m_torch = m._light_inputs
        m._light_inputs = lambda s, t: m_torch(s, t, compiled=False)  # the whole model through the torch path
        torch.testing.assert_close(m.score_candidates(scene, aligned)["reward"], out, atol=1e-5, rtol=1e-5)
