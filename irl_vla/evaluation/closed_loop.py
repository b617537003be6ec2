"""The closed-loop runner: any agent on any ``ClosedLoopEnv`` over a set of routes, with the simulator's verdicts.

Per step it records the ego state, the plan, the agent's K candidates and, with a reward model, the learned
reward of the plan and of each candidate; the env's infractions and route completion; and the NAVSIM sub-scores
of every rolling 4 s window of the driven motion (``irl_vla.envs.rolling_scores``). Per route it writes a record
(``<route>_rep<k>.npz`` arrays, no pickle, and ``<route>_rep<k>.json`` with the infractions and scores), and once
all routes ran, the statistics JSON in the leaderboard's layout. The learned reward of each step's plan is set
against the simulator's EPDMS of the 4 s the ego then drove (Pearson and Spearman correlation per route).

The runner knows no backend: it reads the ``InfoKey`` entries the env reports.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from scipy.stats import pearsonr, spearmanr

from irl_vla.agents.agent import Agent, Candidates
from irl_vla.common.io import replacing, write_json
from irl_vla.data.enums import MetaAction, SE2Index
from irl_vla.data.features.builder import merge_sensor_configs
from irl_vla.data.geometry import relative_to_absolute
from irl_vla.data.scene import LOG_INTERVAL, AgentInput, Annotations, EgoStatus, Frame, Scene, SceneMetadata
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.trajectory import Trajectory
from irl_vla.envs.driving_score import RouteResult, comfort_fraction, penalty, score_route
from irl_vla.envs.env import ActionKind, ClosedLoopEnv, Controls, ResetOption, TerminationReason
from irl_vla.envs.info import InfoKey
from irl_vla.envs.infractions import Infraction, InfractionKind
from irl_vla.envs.monitor import InfractionMonitor, MonitorConfig
from irl_vla.envs.rolling_scores import RollingScorer
from irl_vla.envs.route import Route
from irl_vla.envs.route_rules import checkpoint_speed_ratios
from irl_vla.envs.statistics import write_statistics
from irl_vla.envs.tick import Tick
from irl_vla.envs.trace import TraceIndex
from irl_vla.envs.view import StepView, Viewer
from irl_vla.scoring.aggregation import EPDMS, AggregationConfig
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore

log = logging.getLogger(__name__)

#: Checkpoints of the efficiency measure (Bench2Drive uses 20).
EFFICIENCY_CHECKPOINTS = 20
#: Kinds the runner can detect from the ego's motion, the map and the route alone.
POSE_KINDS: frozenset[InfractionKind] = frozenset(
    {
        InfractionKind.STOP_SIGN,
        InfractionKind.OFF_ROAD,
        InfractionKind.WRONG_WAY,
        InfractionKind.ROUTE_DEVIATION,
        InfractionKind.BLOCKED,
        InfractionKind.ROUTE_TIMEOUT,
        InfractionKind.MIN_SPEED,
    }
)
#: The runner's default: all of them but off-road (which an env reports from the ego's true footprint).
RUNNER_KINDS: tuple[InfractionKind, ...] = tuple(sorted(POSE_KINDS - {InfractionKind.OFF_ROAD}, key=str))


class RewardFunction(Protocol):
    """A learned reward: scores plans of the current scene (a reward model behind an adapter).

    Attributes:
        sensor_config: the sensors it reads (the runner asks the env for them beside the agent's).
    """

    sensor_config: SensorConfig

    def __call__(self, scene: Scene, plans: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """Rewards ``(K,)`` of relative plans ``(K, T, 3)`` at the scene's current frame.

        ``scene`` holds the history frames (the current one last, with its objects and light states; earlier
        frames carry the ego's status and sensors only) and the map; it has no future frames.
        """
        ...


class ControlsAgent(Protocol):
    """An agent that drives an env taking ``Controls`` (``ActionKind.CONTROLS``)."""

    def compute_controls(self, agent_input: AgentInput) -> Controls:
        """The controls for the next step."""
        ...


@dataclass
class ClosedLoopConfig:
    """Settings of the closed-loop runner (``rollout.<key>=...``).

    Attributes:
        episodes: repetitions of every route (``_rep<k>``; the env is reset with seed ``seed + k``).
        seed: base seed of the env's resets.
        max_steps: safety cap on steps per episode (the env's own time limit normally ends it first).
        candidates: ask the agent for its K candidate plans every step.
        detect: infraction kinds the runner detects itself from the env's 10 Hz ego trace, the map and the route
            (kinds that need only the ego's motion) when the env lists the kinds it reports itself in an
            ``infraction_kinds`` attribute and these are not among them (an env without one is taken to report
            every kind). A route-ending one ends the episode.
        monitor: the settings of those detectors.
        sub_scores: compute NAVSIM sub-scores over rolling 4 s windows of the driven motion.
        sub_score_stride: score every n-th 0.5 s window.
        penalise_min_speed: apply the leaderboard 2.x minimum-speed factor (Bench2Drive does not).
        comfort_window: samples per comfort window of the 10 Hz ego trace.
        aggregation: how sub-scores aggregate (EPDMS).
    """

    episodes: int = 1
    seed: int = 0
    max_steps: int = 10_000
    candidates: bool = True
    detect: list[str] = field(default_factory=lambda: [k.value for k in RUNNER_KINDS])
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    sub_scores: bool = True
    sub_score_stride: int = 1
    penalise_min_speed: bool = True
    comfort_window: int = 20
    aggregation: AggregationConfig = field(default_factory=lambda: EPDMS)

    def __post_init__(self) -> None:
        for kind in self.detect:
            if kind not in {k.value for k in POSE_KINDS}:
                raise ValueError(
                    f"ClosedLoopConfig.detect: {kind!r} is not detectable from the ego's motion alone; "
                    f"one of {sorted(k.value for k in POSE_KINDS)}"
                )
        for name in ("episodes", "max_steps", "sub_score_stride", "comfort_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"ClosedLoopConfig.{name}: expected >= 1, got {getattr(self, name)}")


@dataclass
class StepRecord:
    """What happened at one step (before the step's action was applied, except ``infractions``)."""

    time: float
    ego_pose: npt.NDArray[np.float64]  # (3,) global rear axle
    ego_velocity: npt.NDArray[np.float64]  # (2,) ego frame
    route_completion: float
    plan: npt.NDArray[np.float32] | None  # (T, 3) relative
    candidates: Candidates | None
    candidate_rewards: npt.NDArray[np.float64] | None  # (K,)
    learned_reward: float
    traffic_speed: float
    infractions: list[Infraction] = field(default_factory=list)
    meta_action: MetaAction | None = None


@dataclass
class EpisodeOutputs:
    """One route's result and the files written for it."""

    result: RouteResult
    record_arrays: Path | None = None
    record_json: Path | None = None


@dataclass
class RunOutputs:
    """Everything a run produced."""

    episodes: list[EpisodeOutputs]
    statistics: Path | None
    stopped_by_user: bool = False

    @property
    def results(self) -> list[RouteResult]:
        """Route results in run order."""
        return [e.result for e in self.episodes]


def _safe_name(route_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in route_id)


def reward_scene(agent_input: AgentInput, frame: Frame, map_name: str, map_api: Any) -> Scene:
    """A scene of the observation's history in the global frame, the env's current ``frame`` last.

    The earlier frames carry the ego's status (its relative poses composed with the current global pose) and the
    sensors of the observation, and no objects (the env reports only the current frame's).
    """
    origin = frame.ego_status.ego_pose
    n = len(agent_input.ego_statuses)
    frames = []
    for i, status in enumerate(agent_input.ego_statuses[:-1]):
        glob = EgoStatus(
            ego_pose=relative_to_absolute(status.ego_pose[None], origin)[0],
            ego_velocity=status.ego_velocity,
            ego_acceleration=status.ego_acceleration,
            driving_command=status.driving_command,
            in_global_frame=True,
        )
        frames.append(
            Frame(
                token=f"{frame.token}_h{i}",
                timestamp=frame.timestamp - round((n - 1 - i) * LOG_INTERVAL * 1e6),
                roadblock_ids=list(frame.roadblock_ids),
                traffic_lights=[],
                annotations=Annotations.empty(),
                ego_status=glob,
                lidar=agent_input.lidars[i],
                cameras=agent_input.cameras[i],
            )
        )
    current = dataclasses.replace(
        frame,
        lidar=agent_input.lidars[-1] if agent_input.lidars[-1] is not None else frame.lidar,
        cameras=agent_input.cameras[-1] or frame.cameras,
        instruction=agent_input.instruction or frame.instruction,
    )
    meta = SceneMetadata(map_name, frame.token, map_name, frame.token, n, 0)
    return Scene(meta, [*frames, current], map_api)


def correlation(learned: npt.ArrayLike, simulated: npt.ArrayLike) -> dict[str, float | int | None]:
    """Pearson and Spearman correlation of the learned reward with the simulator's score over the defined pairs."""
    a, b = np.asarray(learned, dtype=np.float64), np.asarray(simulated, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    out: dict[str, float | int | None] = {"pairs": int(ok.sum()), "pearson": None, "spearman": None}
    if ok.sum() >= 3 and np.ptp(a[ok]) > 0 and np.ptp(b[ok]) > 0:
        out["pearson"] = float(pearsonr(a[ok], b[ok])[0])
        out["spearman"] = float(spearmanr(a[ok], b[ok])[0])
    return out


class ClosedLoopRunner:
    """Drives an agent through routes of an env.

    Args:
        env: the backend.
        agent: the driving policy (``compute_trajectory``; ``compute_controls`` for a controls env).
        config: runner settings.
        reward: a learned reward to show and compare, or None.
        viewers: shown every step; any returning False stops the run after the current step.
        output_dir: where records and statistics go; None writes nothing.
        on_episode: called after each episode with its outputs (progress reporting).
    """

    def __init__(
        self,
        env: ClosedLoopEnv,
        agent: Agent,
        config: ClosedLoopConfig | None = None,
        *,
        reward: RewardFunction | None = None,
        viewers: Sequence[Viewer] = (),
        output_dir: str | Path | None = None,
        on_episode: Callable[[EpisodeOutputs], None] | None = None,
    ) -> None:
        self.env, self.agent = env, agent
        self.config = config or ClosedLoopConfig()
        self.reward, self.viewers = reward, list(viewers)
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.on_episode = on_episode
        if agent.privileged:
            raise ValueError(
                f"agent {agent.name()}: it reads the logged scene or a metric cache (privileged), which a closed-loop "
                "episode does not have; drive a non-privileged agent"
            )
        if env.action_kind is ActionKind.CONTROLS and not hasattr(agent, "compute_controls"):
            raise ValueError(f"agent {agent.name()}: the env takes controls but the agent has no compute_controls")
        self._stop = False

    # ------------------------------------------------------------------ helpers
    def _sensor_config(self) -> SensorConfig:
        """The agent's sensors, with those the reward model and the viewers (``sensor_config``) ask for."""
        wanted = [self.agent.get_sensor_config()]
        for other in [self.reward, *self.viewers]:
            config = getattr(other, "sensor_config", None)
            if isinstance(config, SensorConfig):
                wanted.append(config)
        return merge_sensor_configs(wanted)

    def _plan(self, obs: AgentInput) -> tuple[Trajectory | Controls, Candidates | None]:
        if self.env.action_kind is ActionKind.CONTROLS:
            return self.agent.compute_controls(obs), None  # type: ignore[attr-defined]
        plan = self.agent.compute_trajectory(obs)
        candidates = self.agent.compute_candidates(obs) if self.config.candidates else None
        return plan, candidates

    def _rewards(
        self, obs: AgentInput, frame: Frame, info_map: Any, plan: Trajectory | Controls, candidates: Candidates | None
    ) -> tuple[float, npt.NDArray[np.float64] | None]:
        if self.reward is None or not isinstance(plan, Trajectory):
            return math.nan, None
        plans = [plan.poses[None]]
        if candidates is not None:
            plans.append(candidates.poses)
        stacked = np.concatenate(plans).astype(np.float32)  # (1 + K, T, 3)
        scene = reward_scene(obs, frame, getattr(info_map, "name", ""), info_map)
        values = np.asarray(self.reward(scene, stacked), dtype=np.float64)
        if values.shape != (len(stacked),):
            raise ValueError(f"reward function: expected {len(stacked)} rewards, got shape {values.shape}")
        return float(values[0]), (values[1:] if candidates is not None else None)

    def _show(self, view: StepView) -> None:
        for viewer in self.viewers:
            if not viewer.update(view):
                self._stop = True

    def _monitor(self, route: Route, map_api: Any) -> InfractionMonitor | None:
        """The runner's own detectors for the kinds the env does not report (None: none left).

        An env that does not say which kinds it reports (no ``infraction_kinds``) is taken to report them all.
        """
        declared = getattr(self.env, "infraction_kinds", None)
        if declared is None:
            return None
        reported = {InfractionKind(k) for k in declared}
        kinds = [k for k in self.config.detect if InfractionKind(k) not in reported]
        if not kinds:
            return None
        settings = dataclasses.replace(self.config.monitor, kinds=kinds, terminate_on_collision=False)
        return InfractionMonitor(route, map_api, settings)

    @staticmethod
    def _detect(
        monitor: InfractionMonitor, info: dict[Any, Any], frame: Frame, sim_time: float
    ) -> tuple[list[Infraction], TerminationReason | None]:
        """Run the runner's detectors on the step's ego trace (or its frame); a route-ending reason, if any."""
        trace = info.get(InfoKey.EGO_TRACE)
        limit, traffic = info.get(InfoKey.SPEED_LIMIT), info.get(InfoKey.TRAFFIC_SPEED)
        if trace is not None and len(trace):
            rows = np.asarray(trace, dtype=np.float64)
            ticks = [
                Tick(
                    time=float(row[TraceIndex.TIME]),
                    ego_pose=row[[TraceIndex.X, TraceIndex.Y, TraceIndex.HEADING]],
                    ego_speed=float(row[TraceIndex.VELOCITY_X]),
                    speed_limit=limit,
                    traffic_speed=traffic,
                )
                for row in rows
            ]
        else:
            ego = frame.ego_status
            ticks = [Tick(sim_time, ego.ego_pose, float(ego.ego_velocity[0]), speed_limit=limit, traffic_speed=traffic)]
        events: list[Infraction] = []
        for tick in ticks:
            if monitor.termination is not None:
                break
            new, reason = monitor.update(tick)
            events += new
            if reason is not None and reason is not TerminationReason.ROUTE_COMPLETED:
                return events, reason
        return events, None

    # ------------------------------------------------------------------ one episode
    def run_episode(self, route_id: str, repetition: int = 0) -> EpisodeOutputs:
        """Drive ``route_id`` once; the result and its record files."""
        cfg = self.config
        wall = time.perf_counter()
        self.agent.reset()
        options = {ResetOption.ROUTE: route_id, ResetOption.SENSOR_CONFIG: self._sensor_config()}
        obs, info = self.env.reset(seed=cfg.seed + repetition, options=options)
        route: Route = info[InfoKey.ROUTE]
        map_api = info.get(InfoKey.MAP)
        frame: Frame = info[InfoKey.FRAME]
        sim_time = float(info.get(InfoKey.TIME, 0.0))
        rolling = None
        per_frame = LOG_INTERVAL / self.env.step_interval
        if cfg.sub_scores and map_api is not None and abs(per_frame - round(per_frame)) > 1e-6:
            log.warning(
                "rolling sub-scores need a frame every %.1f s; the env steps %.2f s: none are computed",
                LOG_INTERVAL,
                self.env.step_interval,
            )
        elif cfg.sub_scores and map_api is not None:
            rolling = RollingScorer(map_api, route_id, aggregation=cfg.aggregation, stride=cfg.sub_score_stride)
            rolling.add(frame, sim_time)
        monitor = self._monitor(route, map_api)
        steps: list[StepRecord] = []
        traces: list[npt.NDArray[np.float64]] = []
        infractions: list[Infraction] = []
        completion, termination = 0.0, None
        sub_scores = np.full(NUM_SUB_SCORES, np.nan)
        for _ in range(cfg.max_steps):
            action, candidates = self._plan(obs)
            learned, cand_rewards = self._rewards(obs, frame, map_api, action, candidates)
            plan = action.poses if isinstance(action, Trajectory) else None
            ego = frame.ego_status
            predicted = getattr(self.agent, "predicted_meta_action", None)  # optional hook of language agents
            record = StepRecord(
                time=sim_time,
                ego_pose=np.asarray(ego.ego_pose, dtype=np.float64),
                ego_velocity=np.asarray(ego.ego_velocity, dtype=np.float64),
                route_completion=completion,
                plan=plan,
                candidates=candidates,
                candidate_rewards=cand_rewards,
                learned_reward=learned,
                traffic_speed=math.nan,
                meta_action=predicted() if callable(predicted) else None,
            )
            steps.append(record)
            self._show(
                self._view(route, map_api, len(steps) - 1, sim_time, frame, obs, record, infractions, sub_scores)
            )
            obs, _reward, terminated, truncated, info = self.env.step(action)
            frame, sim_time = info[InfoKey.FRAME], float(info[InfoKey.TIME])
            new = list(info.get(InfoKey.INFRACTIONS, []))
            completion = float(info.get(InfoKey.ROUTE_COMPLETION, completion))
            traffic = info.get(InfoKey.TRAFFIC_SPEED)
            record.traffic_speed = math.nan if traffic is None else float(traffic)
            trace = info.get(InfoKey.EGO_TRACE)
            if trace is not None and len(trace):
                traces.append(np.asarray(trace, dtype=np.float64))
            ended = None
            if monitor is not None:
                own, ended = self._detect(monitor, info, frame, sim_time)
                new += own
            record.infractions, infractions = new, infractions + new
            if rolling is not None:
                window = rolling.add(frame, sim_time)
                if window is not None:
                    sub_scores = window.sub_scores
            if terminated or truncated or self._stop or ended is not None:
                termination = info.get(InfoKey.TERMINATION) if (terminated or truncated) else ended
                if termination is None:
                    termination = TerminationReason.USER_STOPPED if self._stop else TerminationReason.TIME_LIMIT
                break
        else:
            termination = TerminationReason.TIME_LIMIT
        if monitor is not None:
            late = monitor.finish(TerminationReason(termination))  # open stretches, the last speed checkpoint
            if late and steps:
                steps[-1].infractions += late
            infractions += late
        final = StepRecord(
            sim_time,
            frame.ego_status.ego_pose,
            frame.ego_status.ego_velocity,
            completion,
            None,
            None,
            None,
            math.nan,
            math.nan,
        )
        view = self._view(route, map_api, len(steps), sim_time, frame, obs, final, infractions, sub_scores)
        view.termination = TerminationReason(termination).value
        self._show(view)
        trace = np.concatenate(traces) if traces else np.zeros((0, len(TraceIndex)))
        speeds = np.array([np.hypot(*s.ego_velocity) for s in steps])
        result = score_route(
            route_id,
            route.length,
            completion,
            infractions,
            TerminationReason(termination),
            duration_game=sim_time,
            duration_system=time.perf_counter() - wall,
            repetition=repetition,
            checkpoint_ratios=checkpoint_speed_ratios(
                [s.route_completion for s in steps[1:]] + [completion],
                speeds,
                [s.traffic_speed for s in steps],
                EFFICIENCY_CHECKPOINTS,
            ).tolist(),
            comfort=comfort_fraction(trace, cfg.comfort_window) if len(trace) > 1 else 1.0,
            penalise_min_speed=cfg.penalise_min_speed,
        )
        windows = rolling.windows if rolling is not None else []
        per_step = np.full((len(steps), NUM_SUB_SCORES), np.nan)  # window starting at each step's frame
        per_step_score = np.full(len(steps), np.nan)
        step_times = np.array([s.time for s in steps])
        for w in windows:
            hit = np.flatnonzero(np.abs(step_times - w.start_time) < 1e-6)
            if len(hit):
                per_step[hit[0]], per_step_score[hit[0]] = w.sub_scores, w.score
        learned = np.array([s.learned_reward for s in steps])
        result.extra.update(
            {
                "sub_scores_mean": {
                    name: (float(np.nanmean(col)) if np.isfinite(col).any() else None)
                    for name, col in zip(_sub_names(), per_step.T, strict=True)
                },
                "epdms_mean": float(np.nanmean(per_step_score)) if np.isfinite(per_step_score).any() else None,
                "windows_scored": int(np.isfinite(per_step_score).sum()),
                "window_errors": [w.error for w in windows if w.error],
                "learned_reward_mean": float(np.nanmean(learned)) if np.isfinite(learned).any() else None,
                "reward_vs_simulator": correlation(learned, per_step_score),
            }
        )
        outputs = EpisodeOutputs(result)
        if self.output_dir is not None:
            outputs.record_arrays, outputs.record_json = self._write(result, steps, trace, per_step, per_step_score)
        return outputs

    def _view(
        self,
        route: Route,
        map_api: Any,
        step: int,
        sim_time: float,
        frame: Frame,
        obs: AgentInput,
        record: StepRecord,
        infractions: list[Infraction],
        sub_scores: npt.NDArray[np.float64],
    ) -> StepView:
        return StepView(
            route_id=route.route_id,
            step=step,
            time=sim_time,
            frame=frame,
            map_api=map_api,
            route=route,
            plan=None if record.plan is None else Trajectory(record.plan, self.agent.trajectory_sampling),
            candidates=record.candidates,
            candidate_rewards=record.candidate_rewards,
            learned_reward=None if math.isnan(record.learned_reward) else record.learned_reward,
            sub_scores=sub_scores,
            meta_action=record.meta_action,
            infractions=list(infractions),
            route_completion=record.route_completion,
            penalty=penalty(infractions, route.length * record.route_completion / 100.0),
            cameras=obs.cameras[-1],
        )

    def _write(
        self,
        result: RouteResult,
        steps: list[StepRecord],
        trace: npt.NDArray[np.float64],
        sub_scores: npt.NDArray[np.float64],
        scores: npt.NDArray[np.float64],
    ) -> tuple[Path, Path]:
        assert self.output_dir is not None
        stem = f"{_safe_name(result.route_id)}_rep{result.repetition}"
        records = self.output_dir / "records"
        s = len(steps)
        t = max((len(st.plan) for st in steps if st.plan is not None), default=0)
        k = max((len(st.candidates) for st in steps if st.candidates is not None), default=0)
        plans = np.full((s, t, len(SE2Index)), np.nan, dtype=np.float32)  # (S, T, 3)
        cands = np.full((s, k, t, len(SE2Index)), np.nan, dtype=np.float32)  # (S, K, T, 3)
        cand_scores = np.full((s, k), np.nan, dtype=np.float32)  # (S, K)
        cand_rewards = np.full((s, k), np.nan)  # (S, K)
        for i, st in enumerate(steps):
            if st.plan is not None:
                plans[i, : len(st.plan)] = st.plan
            if st.candidates is not None:
                n = len(st.candidates)
                cands[i, :n, : st.candidates.poses.shape[1]] = st.candidates.poses
                cand_scores[i, :n] = st.candidates.scores
                if st.candidate_rewards is not None:
                    cand_rewards[i, :n] = st.candidate_rewards
        arrays = {
            "time": np.array([st.time for st in steps]),  # (S,) [s]
            "ego_pose": np.stack([st.ego_pose for st in steps]),  # (S, 3) global rear axle
            "ego_velocity": np.stack([st.ego_velocity for st in steps]),  # (S, 2) [m/s] ego frame
            "route_completion": np.array([st.route_completion for st in steps]),  # (S,) [%]
            "plan": plans,
            "candidates": cands,
            "candidate_scores": cand_scores,
            "candidate_rewards": cand_rewards,
            "learned_reward": np.array([st.learned_reward for st in steps]),  # (S,)
            "sub_scores": sub_scores,  # (S, n_sub) of the 4 s window starting at each step
            "epdms": scores,  # (S,)
            "ego_trace": trace,  # (N, len(TraceIndex)) at the simulation rate
        }
        npz = records / f"{stem}.npz"
        with replacing(npz) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        doc = {
            "route_id": result.route_id,
            "repetition": result.repetition,
            "status": result.status,
            "termination": None if result.termination is None else result.termination.value,
            "route_length": result.route_length,
            "route_completion": result.route_completion,
            "penalty": result.penalty,
            "driving_score": result.driving_score,
            "infractions": [i.to_dict() for i in result.infractions],
            "steps_with_infractions": [i for i, st in enumerate(steps) if st.infractions],
            "arrays": npz.name,
            "trace_columns": [c.name.lower() for c in TraceIndex],
            "sub_score_columns": _sub_names(),
            **result.extra,
        }
        path = records / f"{stem}.json"
        write_json(path, doc, indent=2)
        return npz, path

    # ------------------------------------------------------------------ many routes
    def run(self, route_ids: Sequence[str]) -> RunOutputs:
        """Every route ``episodes`` times; the statistics JSON is rewritten after each episode.

        So an interrupted run leaves the statistics of the episodes it finished (``entry_status`` ``Started``,
        ``progress`` [done, total]), as the leaderboard's checkpoint file does.
        """
        if not route_ids:
            raise ValueError("ClosedLoopRunner.run: no routes given")
        self._stop = False
        self.agent.initialize()
        episodes: list[EpisodeOutputs] = []
        expected = len(route_ids) * self.config.episodes
        stats = None if self.output_dir is None else self.output_dir / "statistics.json"
        try:
            for route_id in route_ids:
                for rep in range(self.config.episodes):
                    out = self.run_episode(route_id, rep)
                    episodes.append(out)
                    if stats is not None:
                        write_statistics(stats, [e.result for e in episodes], expected)
                    if self.on_episode is not None:
                        self.on_episode(out)
                    if self._stop:
                        break
                if self._stop:
                    break
        finally:
            for viewer in self.viewers:
                viewer.close()
        return RunOutputs(episodes, stats if episodes else None, self._stop)


def _sub_names() -> list[str]:
    return [s.name for s in SubScore]
