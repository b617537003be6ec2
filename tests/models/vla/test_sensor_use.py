"""The training changes that make the VLA read its sensors, each a config switch that really does what it says.

- ``route``: a head regressing the route lane's centreline ahead from the BEV and visual tokens (target and loss
  term), whose prediction the planner reads (``route.to_planner``), and which can also read the LiDAR at its
  CNN stem's finer cells (``route.lidar_cells``) and the images' band below the horizon (``route.camera_band``);
- ``loss.bev_class_weights``: rare classes weigh more in the BEV semantic cross-entropy;
- ``ego_history_dropout``: in training, some samples' ego history is dropped (the current frame kept);
- checkpoints written before these keys existed load with the values they were trained with.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from irl_vla.data.features.bev_semantic import BevSemanticClass
from irl_vla.data.features.ego import EgoStatusIndex
from irl_vla.models.vla.config import (
    LEGACY_VALUES,
    LossConfig,
    load_model_config,
    model_config_path,
    with_legacy_values,
)
from irl_vla.models.vla.loss import compute_loss
from irl_vla.models.vla.model import (
    ACCELERATION_COLUMNS,
    LATERAL_COLUMNS,
    VLAModel,
    drop_ego_acceleration,
    drop_ego_history,
    drop_ego_lateral,
)
from irl_vla.training.policy import builder_params, model_config, model_record
from tests.models.vla.helpers import ready_model, synthetic_batch, tiny_config

B = 4
CAMERAS = ["cam_f0", "cam_b0"]
#: The sensor-use recipe: `default` with every change on (`tiny` has them on too; `default` and `base` off).
RECIPE = str(model_config_path("default_sensors"))


def _model(**overrides):
    cfg = tiny_config(**overrides)
    batches = [synthetic_batch(cfg, B, seed) for seed in range(2)]
    return cfg, batches, ready_model(cfg, batches)


def test_route_head_is_supervised_and_feeds_the_planner():
    cfg, batches, model = _model()
    f, t = batches[0]
    model.train()
    out = model(f, t, generator=torch.Generator().manual_seed(0))
    assert out["route_centerline"].shape == (B, cfg.route.num_points, 3)
    losses = model.compute_loss(out, t)
    assert losses["route"] > 0
    losses["loss"].backward()
    assert model.route.decoder.queries.grad is not None and model.route.decoder.queries.grad.abs().sum() > 0
    assert "route" in model.planner.blocks[0].cross  # the denoiser attends to the route tokens
    _, targets = builder_params(cfg, CAMERAS)
    assert targets["route_centerline"] == {"num_points": cfg.route.num_points, "spacing": cfg.route.spacing}
    # the planner's modes depend on the route head's prediction
    model.eval()
    with torch.no_grad():
        before = model(f)["modes"]
        model.route.pose_head[-1].bias.add_(1.0)
        after = model(f)["modes"]
    assert not torch.allclose(before, after)


def test_route_head_as_an_auxiliary_task_only_or_off():
    _, batches, aux_only = _model(route={"to_planner": False})
    f = batches[0][0]
    assert "route" not in aux_only.planner.blocks[0].cross and aux_only.route.condition is None
    aux_only.eval()
    with torch.no_grad():
        before = aux_only(f)["modes"]
        aux_only.route.pose_head[-1].bias.add_(1.0)
        torch.testing.assert_close(aux_only(f)["modes"], before, rtol=0, atol=0)
    cfg, batches, off = _model(route={"enabled": False})
    off.train()
    out = off(batches[0][0], batches[0][1], generator=torch.Generator().manual_seed(0))
    assert off.route is None and "route_centerline" not in out and "route" not in off.compute_loss(out, batches[0][1])
    assert "route_centerline" not in builder_params(cfg, CAMERAS)[1]
    assert off.parameter_counts()["route_head"] == 0


def test_route_term_is_masked_l1_or_squared_with_wrapped_heading():
    pred = {"route_centerline": torch.zeros(1, 3, 3), "modes": torch.zeros(1, 1, 8, 3)}
    target = torch.tensor([[[1.0, 2.0, 0.5], [5.0, 5.0, 6.0], [100.0, 100.0, 1.0]]])
    targets = {
        "trajectory": torch.zeros(1, 8, 3),
        "route_centerline": target,
        "route_centerline_mask": torch.tensor([[True, True, False]]),
    }
    cfg = LossConfig(trajectory_cls=0, agent_class=0, agent_box=0, bev_semantic=0, meta_action=0, lm=0)
    out = compute_loss(pred, targets, torch.zeros(1, 8, 3), cfg, language=False, aux3d=False, route=True)
    wrapped = abs(6.0 - 2 * torch.pi)  # heading 6 rad is -0.28 rad away from 0
    expected = (1.0 + 2.0 + 0.5 + 5.0 + 5.0 + wrapped) / 6  # the masked point (100 m off) is left out
    torch.testing.assert_close(out["route"], torch.tensor(expected))
    squared = dataclasses.replace(cfg, route_squared=True)
    out = compute_loss(pred, targets, torch.zeros(1, 8, 3), squared, language=False, aux3d=False, route=True)
    expected = (1.0 + 4.0 + 0.25 + 25.0 + 25.0 + wrapped**2) / 6  # the far errors weigh more than in the L1
    torch.testing.assert_close(out["route"], torch.tensor(expected))
    targets["route_centerline_mask"][:] = False
    for c in (cfg, squared):
        assert (
            compute_loss(pred, targets, torch.zeros(1, 8, 3), c, language=False, aux3d=False, route=True)["route"] == 0
        )


def test_rare_bev_classes_weigh_more():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 1, 1] = BevSemanticClass.VEHICLE
    logits = torch.zeros(1, len(BevSemanticClass), 4, 4)
    logits[:, BevSemanticClass.BACKGROUND] = 3.0  # right everywhere but on the vehicle's cell
    pred = {"bev_semantic_logits": logits, "modes": torch.zeros(1, 1, 8, 3)}
    targets = {"trajectory": torch.zeros(1, 8, 3), "bev_semantic_map": target}
    base = {"trajectory_cls": 0, "agent_class": 0, "agent_box": 0, "meta_action": 0, "lm": 0}
    uniform = LossConfig(**base, bev_class_weights=[1.0] * len(BevSemanticClass))
    weighted = LossConfig(**base, bev_class_weights=load_model_config(RECIPE).loss.bev_class_weights)
    assert (
        weighted.bev_class_weights[BevSemanticClass.VEHICLE] > weighted.bev_class_weights[BevSemanticClass.BACKGROUND]
    )
    anchors = torch.zeros(1, 8, 3)
    flat = compute_loss(pred, targets, anchors, uniform, language=False)["bev_semantic"]
    heavy = compute_loss(pred, targets, anchors, weighted, language=False)["bev_semantic"]
    torch.testing.assert_close(flat, F.cross_entropy(logits, target))
    assert heavy > 2 * flat  # the missed vehicle cell weighs 5 background cells


def test_ego_history_dropout_keeps_the_current_frame():
    history = torch.randn(64, 4, len(EgoStatusIndex))
    dropped = drop_ego_history(history, 0.5, torch.Generator().manual_seed(0))
    torch.testing.assert_close(dropped[:, -1], history[:, -1])  # current velocity and acceleration stay
    gone = (dropped[:, :-1] == 0).flatten(1).all(-1)  # (B,)
    kept = (dropped[:, :-1] == history[:, :-1]).flatten(1).all(-1)
    assert bool((gone | kept).all()) and 16 < int(gone.sum()) < 48


@pytest.mark.parametrize(
    ("drop", "columns", "named"),
    [
        (drop_ego_acceleration, ACCELERATION_COLUMNS, ["ACCELERATION_X", "ACCELERATION_Y"]),
        (drop_ego_lateral, LATERAL_COLUMNS, ["Y", "HEADING", "VELOCITY_Y", "ACCELERATION_Y"]),
    ],
)
def test_accel_and_lateral_dropout_drop_their_columns_in_every_frame_only(drop, columns, named):
    assert sorted(columns) == sorted(EgoStatusIndex[name] for name in named)
    history = torch.randn(64, 4, len(EgoStatusIndex))
    dropped = drop(history, 0.5, torch.Generator().manual_seed(0))
    others = [c for c in range(len(EgoStatusIndex)) if c not in columns]
    torch.testing.assert_close(dropped[..., others], history[..., others])  # the other columns stay
    cols = list(columns)
    gone = (dropped[..., cols] == 0).flatten(1).all(-1)  # (B,): every frame's entries
    kept = (dropped[..., cols] == history[..., cols]).flatten(1).all(-1)
    assert bool((gone | kept).all()) and 16 < int(gone.sum()) < 48


def _with_ego_status(features, edit):
    """A copy of ``features`` whose ego status (cloned) ``edit`` changed in place: the same scene, another motion."""
    out = dict(features)
    out["ego_status"] = features["ego_status"].clone()
    edit(out["ego_status"])
    return out


def _ego_in_training(model, features, targets):
    """The ego embedding of a training pass whose dropout draws come from a generator seeded 1."""
    model.train()
    return model.encode(features, targets, with_aux=False, drop_generator=torch.Generator().manual_seed(1))[0].ego


def _second_draw(probability):
    """Which samples the second per-sample draw of a generator seeded 1 drops (the tiny model's history comes first)."""
    g = torch.Generator().manual_seed(1)
    torch.rand(B, generator=g)
    drawn = torch.rand(B, generator=g) < probability
    assert 0 < int(drawn.sum()) < B
    return drawn


def test_ego_lateral_dropout_in_training_passes_only():
    _, batches, model = _model(ego_lateral_dropout=0.5)
    f, t = batches[0]

    def turn(ego):  # the car already turning
        ego[..., EgoStatusIndex.ACCELERATION_Y] += 2.0
        ego[:, :-1, EgoStatusIndex.HEADING] -= 0.2

    turning = _with_ego_status(f, turn)
    # no acceleration dropout in this model, so no draw for it: the lateral draw is the second
    same = torch.isclose(_ego_in_training(model, f, t), _ego_in_training(model, turning, t)).all(-1)
    assert torch.equal(same, _second_draw(0.5))
    model.eval()
    with torch.no_grad():  # never at inference: every plan reads the ego's turning
        assert not torch.isclose(model(f)["modes"], model(turning)["modes"]).flatten(1).all(-1).any()
    with pytest.raises(ValueError, match="ego_lateral_dropout"):
        dataclasses.replace(tiny_config(), ego_lateral_dropout=1.0)


def test_ego_accel_dropout_in_training_passes_only():
    _, batches, model = _model(ego_accel_dropout=0.5)
    f, t = batches[0]
    braking = _with_ego_status(f, lambda ego: ego[..., EgoStatusIndex.ACCELERATION_X].sub_(3.0))  # poses kept
    # the tiny model drops histories too: its draws come first, then the accelerations' from the same generator
    same = torch.isclose(_ego_in_training(model, f, t), _ego_in_training(model, braking, t)).all(-1)
    assert torch.equal(same, _second_draw(0.5))
    model.eval()
    with torch.no_grad():  # never at inference: every plan reads the ego's acceleration
        assert not torch.isclose(model(f)["modes"], model(braking)["modes"]).flatten(1).all(-1).any()
        chain = model(f, stochastic=True, generator=torch.Generator().manual_seed(2))["chain"]
    model.train()  # nor in the log-probabilities of sampled chains (PPO evaluates them in training mode)
    with torch.no_grad():
        log_p, log_p_braking = model.chain_log_prob(f, chain), model.chain_log_prob(braking, chain)  # (B, K, S)
    assert not torch.isclose(log_p, log_p_braking).flatten(1).all(-1).any()
    with pytest.raises(ValueError, match="ego_accel_dropout"):
        dataclasses.replace(tiny_config(), ego_accel_dropout=1.0)


def test_ego_history_dropout_applies_in_training_passes_only():
    _, batches, model = _model(ego_history_dropout=0.5)
    f, t = batches[0]
    other = _with_ego_status(f, lambda ego: ego[:, :-1].add_(3.0))  # another past, the same current frame
    # the samples drawn for dropping (first draws of the generator) ignore their past; the others do not
    drawn = torch.rand(B, generator=torch.Generator().manual_seed(1)) < 0.5
    assert 0 < int(drawn.sum()) < B
    same = torch.isclose(_ego_in_training(model, f, t), _ego_in_training(model, other, t)).all(-1)
    assert torch.equal(same, drawn)
    model.eval()
    with torch.no_grad():  # never at inference: every sample's plan reads its past
        modes, modes_other = model(f)["modes"], model(other)["modes"]  # (B, K, T, 3)
        assert not torch.isclose(modes, modes_other).flatten(1).all(-1).any()
        chain = model(f, stochastic=True, generator=torch.Generator().manual_seed(2))["chain"]
    # nor in the log-probabilities of sampled chains (PPO evaluates them with the model in training mode)
    model.train()
    with torch.no_grad():
        log_p, log_p_other = model.chain_log_prob(f, chain), model.chain_log_prob(other, chain)  # (B, K, S)
    assert not torch.isclose(log_p, log_p_other).flatten(1).all(-1).any()
    model0 = _model(ego_history_dropout=0.0)[2]
    model0.train()
    a = model0.encode(f, t, with_aux=False, drop_generator=torch.Generator().manual_seed(1))[0].ego
    b = model0.encode(other, t, with_aux=False, drop_generator=torch.Generator().manual_seed(1))[0].ego
    assert not torch.isclose(a, b).all(-1).any()


def test_checkpoints_without_the_new_keys_load_as_trained():
    record = model_record(tiny_config())
    for path in LEGACY_VALUES:  # a record written before these keys existed
        node = record
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    cfg = model_config(with_legacy_values(record))
    assert not cfg.route.enabled and cfg.ego_history_dropout == 0 and set(cfg.loss.bev_class_weights) == {1.0}
    assert not cfg.inputs.lidar_intensity and not cfg.route.lidar_cells and cfg.route.reads_ego_status
    assert cfg.vision.conv_blocks == 0 and not cfg.loss.route_squared and cfg.ego_lateral_dropout == 0
    model = VLAModel(cfg)
    assert not any(k.startswith("route.") for k in model.state_dict())
    assert "route" not in model.planner.blocks[0].cross
    # a record that has the keys keeps its values
    full = model_record(tiny_config())
    assert dataclasses.asdict(model_config(with_legacy_values(full))) == dataclasses.asdict(tiny_config())


def test_only_the_route_term_moves_the_route_poses():
    _, batches, model = _model()
    f, t = batches[0]
    model.train()
    out = model(f, t, generator=torch.Generator().manual_seed(0))
    losses = model.compute_loss(out, t)
    (losses["trajectory_reg"] + losses["trajectory_cls"]).backward()  # the planning terms alone
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.route.pose_head.parameters())
    assert model.route.decoder.queries.grad.abs().sum() > 0  # its tokens do learn from planning
    assert model.route.condition[0].weight.grad.abs().sum() > 0


def test_the_route_head_reads_the_driving_command():
    _, batches, model = _model()
    f = dict(batches[0][0])
    model.eval()
    with torch.no_grad():
        before = model(f)["route_centerline"]
        f["driving_command"] = f["driving_command"].roll(1, dims=-1)  # another command, the same sensors
        assert not torch.allclose(model(f)["route_centerline"], before)


def test_the_recipe_is_small_with_every_change_on():
    recipe, default = load_model_config(RECIPE), load_model_config("small")
    assert recipe.route.feeds_planner and recipe.ego_history_dropout > 0 and recipe.vision.token_grid == [6, 16]
    assert (
        not default.route.enabled and default.ego_history_dropout == 0 and set(default.loss.bev_class_weights) == {1.0}
    )
    recipe_fields = dataclasses.asdict(recipe)
    default_fields = dataclasses.asdict(default)
    changed = {k for k in recipe_fields if recipe_fields[k] != default_fields[k]}
    assert changed == {"size", "ego_history_dropout", "vision", "route", "loss"}


def test_lidar_intensity_is_a_third_channel_the_model_reads():
    with pytest.raises(ValueError, match="lidar_channels: 2.*3 channels with lidar_intensity=True"):
        tiny_config(inputs={"lidar_intensity": True})
    cfg, batches, model = _model(inputs={"lidar_intensity": True, "lidar_channels": 3})
    features, _ = builder_params(cfg, CAMERAS)
    assert features["lidar_bev"]["intensity"] is True
    assert "intensity" not in builder_params(tiny_config(), CAMERAS)[0]["lidar_bev"]  # the default's entries stay
    f = dict(batches[0][0])
    assert f["lidar_bev"].shape[2] == 3
    model.eval()
    with torch.no_grad():
        before = model(f)["modes"]
        f["lidar_bev"] = f["lidar_bev"].clone()
        f["lidar_bev"][:, :, 2] = 1.0 - f["lidar_bev"][:, :, 2]  # only the intensity changes
        assert not torch.allclose(model(f)["modes"], before)


def test_default_is_the_recipe_with_the_road_in_the_lidar():
    road, recipe = load_model_config("default"), load_model_config(RECIPE)
    assert road.size == "default"
    assert dataclasses.replace(road, size=recipe.size, inputs=recipe.inputs) == recipe  # nothing else differs
    changed = {k for k, v in dataclasses.asdict(road.inputs).items() if v != dataclasses.asdict(recipe.inputs)[k]}
    assert changed == {"lidar_channels", "lidar_intensity", "bev_range"}
    assert road.inputs.bev_range[0] < 0 < road.inputs.bev_range[1] and road.inputs.bev_range[1] > 32.0  # ahead
    features, targets = builder_params(road, ["cam_l0", "cam_f0", "cam_r0"])
    assert features["lidar_bev"]["intensity"] is True
    assert features["lidar_bev"]["grid"]["x_max"] == road.inputs.bev_range[1]
    assert targets["bev_semantic_map"]["grid"] == features["lidar_bev"]["grid"]  # targets on the same grid


def test_route_head_reads_the_lidar_stem_cells():
    cfg, batches, model = _model(route={"lidar_cells": True})
    f, t = batches[0]
    grid = (cfg.inputs.bev_height // 4) * (cfg.inputs.bev_width // 4)  # one cell per 4 x 4 LiDAR pixels
    assert model.route.cell_features.shape == (grid, 5)
    model.train()
    out = model(f, t, generator=torch.Generator().manual_seed(0))
    model.compute_loss(out, t)["route"].backward()
    assert model.route.cell_proj.weight.grad.abs().sum() > 0  # the route term trains the cells' projection
    model.eval()
    with torch.no_grad():
        before = model(f)["route_centerline"]
        model.route.cell_proj.weight.zero_()  # the cells now carry their positions only
        assert not torch.allclose(model(f)["route_centerline"], before)
    plain = _model()[2]
    assert not hasattr(plain.route, "cell_features") and plain.route.cell_proj is None
    # a corridor of the grid: the cells whose centres lie in it, in the grid's row-major order
    x_min, x_max, y_min, y_max = cfg.inputs.bev_range
    corridor = [0.0, x_max, -8.0, 8.0]
    cropped = _model(route={"lidar_cells": True, "cells_range": corridor})[2]
    index = cropped.route.cell_index
    rows, cols = cfg.inputs.bev_height // 4, cfg.inputs.bev_width // 4
    x = x_min + (index // cols + 0.5) * (x_max - x_min) / rows
    y = y_min + (index % cols + 0.5) * (y_max - y_min) / cols
    assert bool(((x > 0) & (y.abs() < 8)).all()) and len(index) == (rows // 2) * round(16 / ((y_max - y_min) / cols))
    assert torch.equal(index, index.sort().values) and cropped.route.cell_features.shape == (len(index), 5)
    with torch.no_grad():
        assert cropped.eval()(f)["route_centerline"].shape == before.shape


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"route": {"enabled": False, "lidar_cells": True}}, "needs the route head"),
        ({"route": {"lidar_cells": True}, "vision": {"use_lidar": False}}, "needs vision.use_lidar"),
        ({"route": {"lidar_cells": True, "cells_range": [10, 0, -8, 8]}}, "cells_range"),
        ({"route": {"camera_band": [0.7, 0.5]}}, "camera_band"),
        ({"route": {"enabled": False, "camera_band": [0.5, 0.7]}}, "needs the route head"),
        ({"route": {"camera_band": [0.5, 0.7]}, "vision": {"conv_channels": [8]}}, "needs vision.backend conv"),
    ],
)
def test_route_cells_and_band_need_the_head_and_their_sensor(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_route_head_reads_the_camera_band_below_the_horizon():
    cfg, batches, model = _model(route={"camera_band": [0.5, 0.75]})
    f, t = batches[0]
    vision = model.vision
    stride = vision.band_stride  # the CNN's last-but-one stride (tiny: one stage before the last)
    rows = cfg.inputs.image_height // stride
    top, bottom = vision.band_rows
    assert (top, bottom) == (rows // 2, -(-3 * rows // 4))
    model.eval()
    with torch.no_grad():
        tokens = model.vision(
            model.image_norm.scaled(f["camera_images"], 1.0 / 255.0),
            f["camera_intrinsics"],
            f["camera_to_lidar"],
            f.get("lidar_bev"),
        ).camera_band
    cols = cfg.inputs.image_width // stride
    assert tokens.shape == (B, cfg.inputs.camera_frames * cfg.inputs.num_cameras * (bottom - top) * cols, cfg.d_model)
    # the band's pixels look below the horizon (rows under the principal point of a level camera)
    u = torch.tensor([cfg.inputs.image_width / 2])
    v = (torch.arange(top, bottom, dtype=torch.float32) + 0.5) * stride
    elevation = vision._pixel_directions(f["camera_intrinsics"], f["camera_to_lidar"], u, v)[..., 2]
    assert bool((elevation[0, 0] < 0).all()) and bool((elevation[0, 0].diff() < 0).all())  # lower rows: nearer
    model.train()
    out = model(f, t, generator=torch.Generator().manual_seed(0))
    model.compute_loss(out, t)["route"].backward()
    assert vision.band_proj.weight.grad.abs().sum() > 0  # the route term trains the band's projection
    model.eval()
    with torch.no_grad():
        before = model(f)["route_centerline"]
        vision.band_proj.weight.zero_()
        assert not torch.allclose(model(f)["route_centerline"], before)
    assert _model()[2].vision.band_rows is None


def test_route_head_without_the_ego_status_reads_only_command_and_sensors():
    _, batches, model = _model(route={"reads_ego_status": False})
    f = dict(batches[0][0])
    model.eval()
    with torch.no_grad():
        before = model(f)
        moved = dict(f, ego_status=f["ego_status"] + 3.0)  # another past and speed, the same road and command
        after = model(moved)
        torch.testing.assert_close(after["route_centerline"], before["route_centerline"])
        assert not torch.allclose(after["trajectory"], before["trajectory"])  # the planner still reads the ego
        turned = dict(f, driving_command=f["driving_command"].roll(1, dims=-1))
        assert not torch.allclose(model(turned)["route_centerline"], before["route_centerline"])
    # with the ego status (the default) the same change of the ego's past moves the route prediction
    plain = _model()[2].eval()
    with torch.no_grad():
        assert not torch.allclose(plain(moved)["route_centerline"], plain(f)["route_centerline"])
