"""Background life: every family is busy (median >= 15 road users within 60 m); what is beside the road stays off it."""

from __future__ import annotations

import numpy as np
import shapely

from irl_vla.data.map.map_objects import DRIVABLE_LAYERS
from scenarios.registry import load_families
from sim_bridges.embedded.audit import footprint
from sim_bridges.embedded.recorder import record_log
from sim_bridges.embedded.scenario_world import build_scenario
from sim_bridges.embedded.world_bench import ROAD_USER_CLASSES

FAMILIES = load_families()


def test_the_median_frame_holds_at_least_15_road_users_within_60_m() -> None:
    counts = []
    for name in sorted(FAMILIES):
        inst = build_scenario(FAMILIES[name], 0)
        frames = record_log(inst.world, inst.route_ids, inst.route_centerline, log_name="l", num_frames=6)
        per_frame = [sum(n in ROAD_USER_CLASSES for n in f.annotations.names) for f in frames]
        assert min(per_frame) >= 3, (name, per_frame)  # no family is empty
        counts += per_frame
    assert np.median(counts) >= 15, counts


def test_life_beside_the_road_stays_off_it_and_the_scenario_is_unchanged() -> None:
    family = FAMILIES["lead_vehicle"]
    inst = build_scenario(family, 3)
    road = shapely.union_all([o.polygon for layer in DRIVABLE_LAYERS for o in inst.world.map.objects(layer)])
    background = [u for u in inst.world.road_users if u.background]
    assert {u.agent_class.value for u in background} >= {"vehicle", "pedestrian"}
    for _ in range(50):
        inst.world.step()
    for user in background:
        assert not road.intersects(footprint(user)), user.track_token
    # The background has its own random stream: changing it leaves the scenario's own road users as they were.
    bare = build_scenario(type(family)(**{**family.__dict__, "background": {"followers": 0, "parking": 0.0}}), 3)

    def own(world: object) -> list[tuple[str, float, float, float]]:
        users = world.road_users  # type: ignore[attr-defined]
        return [(u.track_token, u.s, u.lateral, u.speed) for u in users if not u.track_token.startswith("bg_")]

    assert own(bare.world) == own(build_scenario(family, 3).world) and own(bare.world)
    assert len(bare.world.road_users) < len(inst.world.road_users)
