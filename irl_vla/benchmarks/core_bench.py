"""``irl-vla bench core``: throughput of the foundation: SE(2) transforms, interpolation, aggregation, map."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from irl_vla.benchmarks.timing import median_seconds, record
from irl_vla.common.config import require_at_least
from irl_vla.data.geometry import absolute_to_relative, interpolate_poses
from irl_vla.data.map import Lane, LaneConnector, Map, MapObject, Roadblock, RoadblockConnector
from irl_vla.data.map.map_builder import lane_geometry, straight_path, union_polygon
from irl_vla.scoring.aggregation import aggregate
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES

SUITE = "core"


@dataclass
class CoreBenchConfig:
    """Sizes of the core benchmark (``configs/bench/core.yaml``).

    Attributes:
        num_poses: poses per SE(2) transform call.
        num_trajectories: trajectories per interpolation call (8 poses -> 41 samples at 10 Hz).
        num_rows: sub-score rows per aggregation call.
        num_blocks: roadblocks in the benchmark corridor map (3 lanes each, 50 m long).
        num_queries: point queries per map call.
        seed: random seed.
    """

    num_poses: int = 1_000_000
    num_trajectories: int = 4096
    num_rows: int = 1_000_000
    num_blocks: int = 200
    num_queries: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        require_at_least(self, ("num_poses", "num_trajectories", "num_rows", "num_blocks", "num_queries"), 1)


def corridor_map(num_blocks: int, num_lanes: int = 3, block_length: float = 50.0, width: float = 3.5) -> Map:
    """A straight corridor of ``num_blocks`` roadblocks joined by 5 m straight connectors."""
    objects: list[MapObject] = []
    lanes: list[list[Lane]] = []
    step = block_length + 5.0
    for b in range(num_blocks):
        row = []
        for i in range(num_lanes):
            y = -width * i
            c, left, right, poly = lane_geometry(
                straight_path(np.array([b * step, y]), np.array([b * step + block_length, y])), width
            )
            row.append(Lane(f"l{b}_{i}", poly, c, left, right, 13.9, f"rb{b}", lane_index=i))
        lanes.append(row)
        objects.append(Roadblock(f"rb{b}", union_polygon([ln.polygon for ln in row]), [ln.id for ln in row]))
    blocks = {o.id: o for o in objects}
    for b in range(num_blocks - 1):
        conns = []
        for i in range(num_lanes):
            src, dst = lanes[b][i], lanes[b + 1][i]
            xy = straight_path(src.centerline[-1, :2], dst.centerline[0, :2])
            c, left, right, poly = lane_geometry(xy, width)
            cid = f"c{b}_{i}"
            src.outgoing_ids.append(cid)
            dst.incoming_ids.append(cid)
            conns.append(LaneConnector(cid, poly, c, left, right, 13.9, f"rbc{b}", [src.id], [dst.id]))
        blocks[f"rb{b}"].outgoing_ids.append(f"rbc{b}")  # type: ignore[attr-defined]
        blocks[f"rb{b + 1}"].incoming_ids.append(f"rbc{b}")  # type: ignore[attr-defined]
        objects.append(
            RoadblockConnector(
                f"rbc{b}", union_polygon([c.polygon for c in conns]), [c.id for c in conns], [f"rb{b}"], [f"rb{b + 1}"]
            )
        )
        objects.extend(conns)
    objects.extend(ln for row in lanes for ln in row)
    return Map("corridor", objects)


def run(cfg: CoreBenchConfig, repeats: int) -> Iterator[dict[str, Any]]:
    """Yield one record per measurement."""
    rng = np.random.default_rng(cfg.seed)

    poses = rng.normal(size=(cfg.num_poses, 3)) * [100.0, 100.0, 3.0]
    origin = np.array([10.0, -5.0, 0.3])
    t, _ = median_seconds(lambda: absolute_to_relative(poses, origin), repeats=repeats)
    yield record(SUITE, "se2_absolute_to_relative", items=cfg.num_poses, seconds=t, unit="poses")

    plans = np.cumsum(rng.normal(size=(cfg.num_trajectories, 9, 3)), axis=1)
    times, query = np.arange(9) * 0.5, np.arange(41) * 0.1
    t, _ = median_seconds(lambda: interpolate_poses(times, plans, query), repeats=repeats)
    yield record(SUITE, "interpolate_8_poses_to_41", items=cfg.num_trajectories, seconds=t, unit="trajectories")

    rows = rng.uniform(size=(cfg.num_rows, NUM_SUB_SCORES))
    t, _ = median_seconds(lambda: aggregate(rows), repeats=repeats)
    yield record(SUITE, "aggregate_numpy", items=cfg.num_rows, seconds=t, unit="rows")
    rows_t = torch.from_numpy(rows)
    t, _ = median_seconds(lambda: aggregate(rows_t), repeats=repeats)
    yield record(SUITE, "aggregate_torch_cpu", items=cfg.num_rows, seconds=t, unit="rows")

    t, _ = median_seconds(lambda: corridor_map(cfg.num_blocks), repeats=1, warmup=0)
    map_api = corridor_map(cfg.num_blocks)
    yield record(SUITE, "map_build", items=len(map_api.all_objects()), seconds=t, unit="objects")
    span = cfg.num_blocks * 55.0
    pts = np.column_stack([rng.uniform(0, span, cfg.num_queries), rng.uniform(-9.0, 2.0, cfg.num_queries)])
    t, _ = median_seconds(lambda: [map_api.lanes_containing(p) for p in pts], repeats=repeats)
    yield record(SUITE, "map_lanes_containing", items=cfg.num_queries, seconds=t, unit="queries")
    route = [o.id for o in map_api.all_objects() if o.layer.value in ("roadblock", "roadblock_connector")]
    route.sort(key=lambda rid: (int(rid.lstrip("rbc")), rid.startswith("rbc")))
    route = route[:40]
    start = np.array([10.0, 0.0, 0.0])
    t, _ = median_seconds(lambda: map_api.route_centerline(route, start), repeats=repeats)
    yield record(SUITE, "map_route_centerline_40_blocks", items=1, seconds=t, unit="routes")
