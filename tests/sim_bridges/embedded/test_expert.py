"""The expert across generated scenes: safe, on the road, obeys lights, comfortable; lane changes and nudges."""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.data.enums import AgentClass
from scenarios.registry import load_families
from sim_bridges.embedded.audit import audit_rollout
from sim_bridges.embedded.placement import make_road_user
from sim_bridges.embedded.road_network import build_corridor
from sim_bridges.embedded.scenario_world import build_scenario
from sim_bridges.embedded.world import World

FAMILIES = load_families()


def _audit(name: str, seeds: range) -> None:
    for seed in seeds:
        inst = build_scenario(FAMILIES[name], seed)
        report = audit_rollout(inst.world, 20.0)
        assert report.ok, (name, seed, report.summary())
        assert report.progress > 20.0, (name, seed, report.progress)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_expert_is_safe_legal_and_comfortable(name: str) -> None:
    _audit(name, range(3))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_expert_is_safe_over_many_seeds(name: str) -> None:
    _audit(name, range(3, 23))


def test_route_lane_change_reaches_the_turn_lane_before_the_junction() -> None:
    for seed in range(4):
        inst = build_scenario(FAMILIES["route_lane_change"], seed)
        ego = inst.world.ego
        assert abs(ego.lateral - ego.home_lateral) > 3.0  # starts in the other lane
        while ego.s + ego.length / 2 < ego.stops[0].s:
            inst.world.step()
            if ego.speed < 0.05 and inst.world.time > 60:
                break
        assert abs(ego.lateral - ego.home_lateral) < 0.05, seed


def test_merge_completes_before_the_lane_ends() -> None:
    for seed in range(4):
        inst = build_scenario(FAMILIES["merge"], seed)
        ego = inst.world.ego
        for _ in range(250):
            inst.world.step()
            if ego.s + ego.length / 2 > ego.lane_change_before:
                assert abs(ego.lateral - ego.home_lateral) < 0.05, seed
        assert ego.s + ego.length / 2 > ego.lane_change_before, seed  # it did get past


def _corridor_with_cone(oncoming_s: float | None) -> World:
    net = build_corridor(lanes_forward=1, lanes_backward=1, length=400.0, speed_limit=12.0)
    lane = net.arms["main"].in_lanes
    ego = make_road_user(net, lane, token="ego", s=30.0, speed=10.0, target_speed=11.0, dimensions=(5.176, 2.297, 1.8))
    ego.expert, ego.nudge_room = True, (0.7, 3.1)
    cone = make_road_user(
        net, lane, token="cone", s=100.0, speed=0.0, target_speed=0.0, lateral=-1.0, agent_class=AgentClass.BARRIER
    )
    users = [cone]
    if oncoming_s is not None:
        back = net.arms["oncoming"].in_lanes
        users.append(make_road_user(net, back, token="oncoming", s=oncoming_s, speed=10.0, target_speed=10.0))
    return World(net.map, users, ego)


def test_expert_nudges_round_a_barrier_when_the_oncoming_lane_is_free() -> None:
    world = _corridor_with_cone(None)
    report = audit_rollout(world, 15.0)
    assert report.ok, report.summary()
    assert world.ego.s > 130.0  # passed the barrier ...
    assert abs(world.ego.lateral) < 0.05  # ... and came back to its lane


def test_expert_waits_behind_the_barrier_for_oncoming_traffic() -> None:
    world = _corridor_with_cone(oncoming_s=220.0)  # arrives while the ego would be out of its lane
    laterals, s_at_pass = [], None
    for _ in range(250):
        world.step()
        oncoming = world.road_users[1]
        if s_at_pass is None and world.ego.path.project(oncoming.pose[None, :2])[0][0] < world.ego.s:
            s_at_pass = world.ego.s
        laterals.append(world.ego.lateral)
    assert s_at_pass is not None and s_at_pass < 100.0  # still behind the barrier when they met
    assert max(laterals) > 1.0 and world.ego.s > 130.0  # then it went round


def test_cut_in_vehicle_ends_ahead_in_the_ego_lane_with_a_safe_gap() -> None:
    for seed in range(4):
        inst = build_scenario(FAMILIES["cut_in"], seed)
        world = inst.world
        cutter = next(a for a in world.road_users if a.track_token.startswith("cut_in"))
        gaps = []
        for _ in range(120):
            world.step()
            if abs(cutter.lateral) < 1.0:
                gaps.append(cutter.s - world.ego.s - (cutter.length + world.ego.length) / 2)
        assert abs(cutter.lateral) < 0.05, seed
        assert gaps and min(gaps) > 2.0, (seed, min(gaps) if gaps else None)
        assert np.isfinite(min(gaps))


def test_expert_passes_the_construction_zone_with_a_car_stopped_behind_it() -> None:
    """The car stopped behind it in the lane it leaves does not hold it behind the barrier for good."""
    world = build_scenario(FAMILIES["construction_zone"], 0).world
    start = world.ego.s
    for _ in range(300):  # 30 s: the barrier is 60 m ahead, the free lane beside it carries a flow
        world.step()
    assert world.ego.s - start > 120.0
