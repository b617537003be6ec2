"""Background life around every scenario: what makes a scene as busy as real driving.

Real NAVSIM frames hold tens of annotated objects; a scenario family only places the few road users its
situation needs. The background adds, in every family:

* **traffic that interacts** (ordinary reactive road users): vehicles following the ego in its lane, flows
  in the other same-direction lanes and in the oncoming lanes of a corridor, and flows leaving an
  intersection on every arm (the ego meets them as oncoming traffic, or follows them after its turn);
* **life beside the road** (``RoadUser.background``, off the road, so no one reacts to it and it reacts
  to no one): cars parked in a bay beyond each kerb, cyclists on a cycle track and people walking on the
  pavement behind it.

Beside every kerb (the right edge of a roadblock's rightmost lane, in its driving direction) the verge is laid
out outwards as: ``PARKING`` bay, ``CYCLE_TRACK`` lines (one per direction), ``PAVEMENT`` walking lines (one
per person, so nobody walks through anybody). Nothing is placed within ``JUNCTION_CLEARANCE`` of an
intersection's box. The background draws from its own random stream, so it never changes the scenario it
surrounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import AgentClass
from irl_vla.data.map import Lane, MapLayer, Roadblock
from irl_vla.data.map.map_builder import offset_polyline
from sim_bridges.embedded.idm import IDMParams, driver_style
from sim_bridges.embedded.paths import Path
from sim_bridges.embedded.placement import DIMENSIONS, make_road_user
from sim_bridges.embedded.road_network import RoadNetwork
from sim_bridges.embedded.road_users import RoadUser

FloatArray = npt.NDArray[np.float64]

PARKING = (2.0, 3.9)  # [m] beyond the kerb: the parking bay (inner and outer edge)
CYCLE_TRACK = (4.6, 5.4)  # [m] beyond the kerb: the cycle lines, with and against the kerb's direction
PAVEMENT = 6.3  # [m] beyond the kerb: the first walking line
WALK_SPACING = 0.8  # [m] between walking lines
WALK_LINES = 4  # walking lines per pavement (even ones with the kerb's direction, odd ones against it)
WALK_SPACING_ALONG = 3.0  # [m] at least between people on one line
MOVE_HORIZON = 40.0  # [s] people and cyclists start where they stay on their path this long (then they stop)
FLOW_BEHIND = 40.0  # [m] flows start at most this far behind the ego along its route ...
FLOW_ASIDE = 50.0  # [m] ... and at most this far to its side
ROUTE_REACH = (-80.0, 320.0)  # [m] the stretch of the ego's path (from its start) that a log can see ...
VISIBLE = 90.0  # [m] ... and how far from it life beside the road is placed
JUNCTION_CLEARANCE = 12.0  # [m] beyond an intersection's box before anything is placed
MIN_KERB = 20.0  # [m] shorter kerb stretches get nothing

#: Background settings and their defaults (a family's ``background`` group overrides them).
DEFAULTS: dict[str, Any] = {
    "followers": [1, 2],  # vehicles behind the ego in its lane
    "follower_gap": [14.0, 30.0],  # [m] bumper gaps between them
    "adjacent_gap": [25.0, 55.0],  # [m] gaps of the flows in the other same-direction lanes (corridors)
    "oncoming_gap": [35.0, 80.0],  # [m] gaps of the oncoming flows (corridors)
    "leaving_gap": [25.0, 60.0],  # [m] gaps of the flows leaving an intersection on each arm
    "flow_speed_fraction": [0.7, 0.95],  # of the speed limit
    "parking": [0.25, 0.5],  # fraction of each kerb's bay taken by parked cars
    "walkers_per_100m": [1.5, 4.0],  # people per 100 m of each pavement
    "cyclists_per_kerb": [0, 1],  # on each cycle track
}

#: Keys a family's ``background`` group may set.
KNOWN_KEYS = set(DEFAULTS)


@dataclass
class Kerb:
    """The right edge of a roadblock.

    Attributes:
        xy: polyline ``(N, 2)`` [m] in the driving direction of the roadblock's lanes.
        lo: start of the usable stretch (clear of intersections) [m of arc length].
        hi: end of the usable stretch [m of arc length].
    """

    xy: FloatArray
    lo: float
    hi: float

    def outside(self, distance: float, *, reverse: bool = False) -> Path:
        """The line ``distance`` [m] beyond the kerb, trimmed to the usable range (reversed on request)."""
        path = Path(offset_polyline(self.xy, -distance))
        s = np.linspace(self.lo, self.hi, max(2, int((self.hi - self.lo) / 1.0) + 1))
        xy = path.pose_at(s)[:, :2]
        return Path(xy[::-1] if reverse else xy)


def kerbs(net: RoadNetwork) -> list[Kerb]:
    """Every roadblock's right edge, clear of the network's intersection box."""
    out = []
    clear = net.junction_half_size + JUNCTION_CLEARANCE if net.junction_half_size > 0 else None
    for block in net.map.objects(MapLayer.ROADBLOCK):
        assert isinstance(block, Roadblock)
        lane = net.map.get_lane(block.lane_ids[-1])
        assert isinstance(lane, Lane)
        xy = np.asarray(lane.right_boundary, dtype=np.float64)[:, :2]
        s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))])
        ok = np.ones(len(xy), dtype=bool)
        if clear is not None:
            ok = np.max(np.abs(xy), axis=1) > clear
        if not ok.any():
            continue
        lo, hi = float(s[ok].min()), float(s[ok].max())
        if hi - lo >= MIN_KERB:
            out.append(Kerb(xy, lo, hi))
    return out


class Background:
    """Adds background life to a scenario being built (``scenario_world._Builder``)."""

    def __init__(self, builder: Any, settings: dict[str, Any], rng: np.random.Generator) -> None:
        self.b, self.rng = builder, rng
        self.settings = {**DEFAULTS, **settings}
        self.count = 0
        ego = builder.ego
        self._route_xy = ego.path.pose_at(np.arange(ego.s + ROUTE_REACH[0], ego.s + ROUTE_REACH[1], 5.0))[:, :2]

    def relevant(self, path: Path, s: float) -> bool:
        """Whether a vehicle at ``s`` on ``path`` starts where the ego can still meet it.

        Not more than ``FLOW_BEHIND`` behind the ego along its route, nor more than ``FLOW_ASIDE`` to its side.
        """
        ego = self.b.ego
        s_route, lateral = ego.path.project(path.pose_at(s)[None, :2])
        return bool(s_route[0] > ego.s - FLOW_BEHIND and abs(lateral[0]) < FLOW_ASIDE)

    def visible(self, path: Path, s: float) -> bool:
        """Whether arc length ``s`` of ``path`` lies within ``VISIBLE`` of the stretch of road the log can see."""
        xy = path.pose_at(s)[:2]
        return bool(np.min(np.sum((self._route_xy - xy) ** 2, axis=1)) < VISIBLE**2)

    def value(self, key: str) -> float:
        """Draw the setting ``key`` (a range is sampled uniformly, integers inclusively)."""
        v = self.settings[key]
        if not isinstance(v, list):
            return float(v)
        lo, hi = v
        if isinstance(lo, int) and isinstance(hi, int):
            return float(self.rng.integers(lo, hi + 1))
        return float(self.rng.uniform(lo, hi))

    def _token(self, kind: str) -> str:
        self.count += 1
        return f"bg_{kind}_{self.count}"

    def _speed(self) -> float:
        return self.b.limit * self.value("flow_speed_fraction")

    def add(self) -> None:
        """Add everything: followers, flows, then the life beside the road."""
        self.add_followers()
        if self.b.road["type"] == "corridor":
            self.add_corridor_flows()
        else:
            self.add_leaving_flows()
        for kerb in kerbs(self.b.net):
            self.add_parked(kerb)
            self.add_cyclists(kerb)
            self.add_walkers(kerb)

    # ------------------------------------------------------------------ traffic that interacts
    def _free(self, s: float, lateral: float, users: list[RoadUser], path_s: dict[int, float], room: float) -> bool:
        """Whether ``s`` [m] on the route path at ``lateral`` is ``room`` [m] clear of ``users`` in that lane."""
        for user in users:
            if id(user) in path_s and abs(user.lateral - lateral) < 2.0 and abs(path_s[id(user)] - s) < room:
                return False
        return True

    def _route_positions(self) -> tuple[list[RoadUser], dict[int, float]]:
        """Road users placed along the ego's route lanes and their arc lengths on them (same parametrisation)."""
        users = [u for u in self.b.road_users if not u.background and len(u.path.xy) == len(self.b.ego.path.xy)]
        same = [u for u in users if np.array_equal(u.path.xy, self.b.ego.path.xy)]
        return same, {id(u): u.s for u in same}

    def add_followers(self) -> None:
        """Vehicles behind the ego in its lane (when it starts in the lane its route follows)."""
        ego = self.b.ego
        if abs(ego.lateral - ego.home_lateral) > 0.05:
            return  # its lane is not the route's: the family places the traffic it must merge into
        length = DIMENSIONS[AgentClass.VEHICLE][0]
        s = ego.s - ego.length / 2
        users, path_s = self._route_positions()
        for _ in range(int(self.value("followers"))):
            s -= self.value("follower_gap") + length / 2
            if s - length / 2 < 2.0 or not self._free(s, ego.lateral, users, path_s, length + 4.0):
                return
            v = min(ego.speed, self._speed())
            follower = self.b.on_route(
                self._token("follower"), s, v, lateral=ego.lateral, target_speed=self._speed(), idm=_idm(self.rng)
            )
            follower.home_lateral = ego.lateral
            s -= length / 2

    def add_corridor_flows(self) -> None:
        """Flows in the same-direction lanes the ego neither starts in nor needs, and in the oncoming lanes."""
        ego, b = self.b.ego, self.b
        users, path_s = self._route_positions()
        length = DIMENSIONS[AgentClass.VEHICLE][0]
        for offset in b.lane_offsets:
            if min(abs(offset - ego.lateral), abs(offset - ego.home_lateral)) < 1.0:
                continue
            s = ego.s - FLOW_BEHIND + self.value("adjacent_gap") * self.rng.uniform()
            while s < min(ego.s + 260.0, ego.path.length - 30.0):
                if s > length and self._free(s, offset, users, path_s, length + 10.0):
                    v = self._speed()
                    flow = b.on_route(self._token("flow"), s, v, lateral=offset, target_speed=v, idm=_idm(self.rng))
                    flow.home_lateral = offset
                s += self.value("adjacent_gap") + length
        if "oncoming" not in b.net.arms:
            return
        for lane in b.net.arms["oncoming"].in_lanes:
            placed = [u.s for u in b.road_users if np.array_equal(u.path.xy, b.net.paths[lane].xy)]
            s = self.value("oncoming_gap") * self.rng.uniform()
            while s < b.net.paths[lane].length - 20.0:
                if all(abs(s - p) > length + 10.0 for p in placed) and self.relevant(b.net.paths[lane], s):
                    v = self._speed()
                    b.road_users.append(
                        make_road_user(b.net, [lane], token=self._token("oncoming"), s=s, speed=v, target_speed=v)
                    )
                s += self.value("oncoming_gap") + length

    def add_leaving_flows(self) -> None:
        """Vehicles driving away from the intersection in every outgoing lane."""
        b = self.b
        length = DIMENSIONS[AgentClass.VEHICLE][0]
        for arm in b.net.arms.values():
            for lane in arm.out_lanes:
                s = JUNCTION_CLEARANCE + self.value("leaving_gap") * self.rng.uniform()
                while s < b.net.paths[lane].length - 40.0:
                    if self.relevant(b.net.paths[lane], s):
                        v = self._speed()
                        user = make_road_user(b.net, [lane], token=self._token("leaving"), s=s, speed=v, target_speed=v)
                        b.road_users.append(user)
                    s += self.value("leaving_gap") + length

    # ------------------------------------------------------------------ life beside the road
    def add_parked(self, kerb: Kerb) -> None:
        """Cars in the bay beyond the kerb, nose to tail with gaps, taking ``parking`` of its length."""
        length, width, height = DIMENSIONS[AgentClass.VEHICLE]
        bay = kerb.outside((PARKING[0] + PARKING[1]) / 2)
        share = self.value("parking")
        slot = length + 1.5
        for k in range(int(bay.length // slot)):
            if self.rng.uniform() < share and self.visible(bay, (k + 0.5) * slot):
                self._static(bay, (k + 0.5) * slot, AgentClass.VEHICLE, (length, width, height))

    def add_cyclists(self, kerb: Kerb) -> None:
        """At most one cyclist per cycle line, riding with or against the kerb's direction."""
        for line, reverse in ((CYCLE_TRACK[0], False), (CYCLE_TRACK[1], True)):
            if self.rng.uniform() >= self.value("cyclists_per_kerb") / 2:
                continue
            path, speed = kerb.outside(line, reverse=reverse), float(self.rng.uniform(3.0, 5.5))
            s = self._start(path, speed)
            if self.visible(path, s):
                self._mover(path, speed, AgentClass.BICYCLE, s)

    def add_walkers(self, kerb: Kerb) -> None:
        """People walking along the pavement: ``WALK_LINES`` lines, half each way, one pace per line.

        Everybody on a line walks at the line's pace and starts ``WALK_SPACING_ALONG`` apart, so nobody walks
        into anybody.
        """
        count = round(self.value("walkers_per_100m") * (kerb.hi - kerb.lo) / 100.0)
        lines = [
            (kerb.outside(PAVEMENT + WALK_SPACING * k, reverse=k % 2 == 1), float(self.rng.uniform(0.9, 1.5)), [])
            for k in range(WALK_LINES)
        ]
        for _ in range(count):
            path, speed, taken = lines[int(self.rng.integers(WALK_LINES))]
            s = self._start(path, speed)
            if self.visible(path, s) and all(abs(s - other) > WALK_SPACING_ALONG for other in taken):
                taken.append(s)
                self._mover(path, speed, AgentClass.PEDESTRIAN, s)

    def _start(self, path: Path, speed: float) -> float:
        """A start on ``path`` from which a mover at ``speed`` stays on it for ``MOVE_HORIZON`` seconds."""
        return float(self.rng.uniform(0.0, max(path.length - speed * MOVE_HORIZON, 0.0)))

    def _static(self, path: Path, s: float, cls: AgentClass, dims: tuple[float, float, float]) -> None:
        length, width, height = dims
        self.b.road_users.append(
            RoadUser(self._token("parked"), cls, length, width, height, path, s=s, reactive=True, background=True)
        )

    def _mover(self, path: Path, speed: float, cls: AgentClass, s: float) -> None:
        length, width, height = DIMENSIONS[cls]
        self.b.road_users.append(
            RoadUser(
                self._token(cls.value),
                cls,
                length,
                width,
                height,
                path,
                s=s,
                speed=speed,
                target_speed=speed,
                reactive=False,
                background=True,
            )
        )


def _idm(rng: np.random.Generator) -> IDMParams:
    """A background driver's style (a little shorter headway and gentler acceleration than the scenario's)."""
    return driver_style(rng, headway=(1.2, 1.8), accel_max=(1.0, 1.6))
