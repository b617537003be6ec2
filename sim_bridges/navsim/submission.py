"""NAVSIM leaderboard submissions: pickles written without navsim installed, and checked.

Structure (``reference/navsim.md`` §3.3)::

    v1 (navtest):  {"team_name", "authors", "email", "institution", "country / region",
                    "predictions": [{token: Trajectory, ...}]}
    v2 (two-stage): {... the same metadata ..., "first_stage_predictions": [{stage-1 token: Trajectory}],
                    "second_stage_predictions": [{stage-2 token: Trajectory}]}

Each value must unpickle, on the server, as ``navsim.common.dataclasses.Trajectory`` holding a
``nuplan.planning.simulation.trajectory.trajectory_sampling.TrajectorySampling``. Unpickling does not run their
``__init__``, so the state is written complete and consistent: ``{"poses": (N, 3) array,
"trajectory_sampling": <sampling>}`` and ``{"num_poses": int, "time_horizon": float, "interval_length":
float}`` (§4.2 of the formats note). The suite writes two stand-in dataclasses under those module paths, with
numpy globals under the names navsim's numpy 1.x knows (``pickles.dumps``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from irl_vla.common.io import DataFormatError, atomic_open
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.source import check_source
from irl_vla.data.trajectory import Trajectory
from sim_bridges.navsim import pickles
from sim_bridges.navsim.openscene import OpenSceneLoader

TRAJECTORY_CLASS = ("navsim.common.dataclasses", "Trajectory")
SAMPLING_CLASS = ("nuplan.planning.simulation.trajectory.trajectory_sampling", "TrajectorySampling")
METADATA_KEYS = ("team_name", "authors", "email", "institution", "country / region")
V1_KEYS = ("predictions",)
V2_KEYS = ("first_stage_predictions", "second_stage_predictions")


@dataclass
class NuplanTrajectorySampling:
    """Pickled as nuPlan's ``TrajectorySampling`` (same attributes)."""

    num_poses: int
    time_horizon: float
    interval_length: float


@dataclass
class NavsimTrajectory:
    """Pickled as navsim's ``Trajectory`` (same attributes)."""

    poses: np.ndarray
    trajectory_sampling: NuplanTrajectorySampling


STAND_INS: dict[type, tuple[str, str]] = {NavsimTrajectory: TRAJECTORY_CLASS, NuplanTrajectorySampling: SAMPLING_CLASS}
#: Globals a submission may name, resolved to the stand-ins (checking never imports navsim).
SUBMISSION_GLOBALS: dict[tuple[str, str], Any] = {
    **pickles.LOG_GLOBALS,
    TRAJECTORY_CLASS: NavsimTrajectory,
    SAMPLING_CLASS: NuplanTrajectorySampling,
}


@dataclass
class TeamInfo:
    """The metadata of a submission (``configs/submit.yaml``)."""

    team_name: str = "irl-vla"
    authors: list[str] = field(default_factory=lambda: ["anonymous"])
    email: str = "anonymous@example.com"
    institution: str = "unknown"
    country: str = "unknown"

    def to_dict(self) -> dict[str, Any]:
        """The submission's metadata keys."""
        return {
            "team_name": self.team_name,
            "authors": list(self.authors),
            "email": self.email,
            "institution": self.institution,
            "country / region": self.country,
        }


def to_navsim(trajectory: Trajectory, where: str = "") -> NavsimTrajectory:
    """The stand-in of a suite ``Trajectory`` (float32 poses, complete sampling).

    Raises:
        ValueError: naming ``where`` when the poses are not finite.
    """
    poses = np.asarray(trajectory.poses, dtype=np.float32)
    if not np.all(np.isfinite(poses)):
        raise ValueError(f"{where}: the trajectory has NaN or infinite poses")
    s = trajectory.trajectory_sampling
    assert s.num_poses is not None and s.time_horizon is not None and s.interval_length is not None
    sampling = NuplanTrajectorySampling(int(s.num_poses), float(s.time_horizon), float(s.interval_length))
    return NavsimTrajectory(poses, sampling)


def build_submission(team: TeamInfo, stages: dict[str, dict[str, Trajectory]]) -> dict[str, Any]:
    """A submission dict: ``stages`` maps ``predictions`` (v1) or the two v2 keys to token -> plan."""
    if set(stages) not in (set(V1_KEYS), set(V2_KEYS)):
        raise ValueError(f"build_submission: stages must be {list(V1_KEYS)} or {list(V2_KEYS)}, got {list(stages)}")
    doc = team.to_dict()
    for key, plans in stages.items():
        doc[key] = [{token: to_navsim(plan, f"{key} token {token}") for token, plan in plans.items()}]
    return doc


def write_submission(path: str | os.PathLike[str], submission: dict[str, Any]) -> None:
    """Pickle ``submission`` atomically, with the stand-ins written as navsim/nuPlan classes."""
    data = pickles.dumps(submission, STAND_INS)
    with atomic_open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------------------------- checking
def _check_trajectory(value: Any, where: str) -> list[str]:
    if not isinstance(value, NavsimTrajectory):
        return [f"{where}: a {type(value).__name__}, not a navsim Trajectory"]
    state = vars(value)
    if set(state) != {"poses", "trajectory_sampling"}:
        return [f"{where}: Trajectory attributes {sorted(state)}, expected poses and trajectory_sampling"]
    sampling = value.trajectory_sampling
    if not isinstance(sampling, NuplanTrajectorySampling) or set(vars(sampling)) != {
        "num_poses",
        "time_horizon",
        "interval_length",
    }:
        return [f"{where}: trajectory_sampling is not a complete nuPlan TrajectorySampling"]
    problems = []
    n, horizon, interval = sampling.num_poses, sampling.time_horizon, sampling.interval_length
    if not isinstance(n, int) or not isinstance(horizon, float) or not isinstance(interval, float):
        problems.append(
            f"{where}: sampling types {type(n).__name__}/{type(horizon).__name__}/{type(interval).__name__}"
        )
    elif not math.isclose(n * interval, horizon, rel_tol=1e-9):
        problems.append(f"{where}: sampling num_poses {n} x interval {interval} != horizon {horizon}")
    poses = value.poses
    if not isinstance(poses, np.ndarray) or poses.ndim != 2 or poses.shape != (n, 3):
        shape = getattr(poses, "shape", None)
        problems.append(f"{where}: poses of shape {shape}, expected ({n}, 3)")
    elif not np.all(np.isfinite(poses)):
        problems.append(f"{where}: poses hold NaN or infinite values")
    return problems


def check_submission(
    path: str | os.PathLike[str], expected: dict[str, Iterable[str]] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Load a submission with the restricted unpickler and list what is wrong with it.

    Args:
        path: the pickle.
        expected: per prediction key, the tokens that must be present (and no others), if known.

    Returns:
        ``(summary, problems)``: the version, team and token counts; an empty problem list means valid.

    Raises:
        FileNotFoundError: when the file is missing.
        DataFormatError: when it is not a pickle or names a global a submission does not contain.
    """
    doc = pickles.load(path, SUBMISSION_GLOBALS)
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise DataFormatError(f"{path}: a submission is a dict, got {type(doc).__name__}")
    keys = V2_KEYS if any(k in doc for k in V2_KEYS) else V1_KEYS
    version = "v2" if keys == V2_KEYS else "v1"
    for key in METADATA_KEYS:
        if key not in doc:
            problems.append(f"missing metadata key {key!r}")
        elif not isinstance(doc[key], str | list) or not doc[key]:
            problems.append(f"metadata {key!r} is empty or not text")
    counts = {}
    for key in keys:
        value = doc.get(key)
        if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], dict):
            problems.append(f"{key}: expected a list holding exactly one dict of token -> Trajectory")
            continue
        plans = value[0]
        counts[key] = len(plans)
        for token, trajectory in plans.items():
            problems += _check_trajectory(trajectory, f"{key}[{token!r}]")
        if expected is not None and key in expected:
            want = set(expected[key])
            missing, extra = sorted(want - set(plans)), sorted(set(plans) - want)
            if missing:
                problems.append(f"{key}: {len(missing)} tokens missing, e.g. {missing[:3]}")
            if extra:
                problems.append(f"{key}: {len(extra)} tokens not in the split, e.g. {extra[:3]}")
    unknown = sorted(set(doc) - set(METADATA_KEYS) - set(keys))
    if unknown:
        problems.append(f"unexpected keys {unknown}")
    summary = {"version": version, "team_name": doc.get("team_name"), "tokens": counts}
    return summary, problems


def predictions(
    tokens: list[str],
    plan_of: Callable[[str], Trajectory],
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Trajectory]:
    """The agent's plan for every token (an error names the token that failed)."""
    out = {}
    for i, token in enumerate(tokens):
        try:
            out[token] = plan_of(token)
        except (ValueError, KeyError, FileNotFoundError) as e:
            raise ValueError(f"token {token}: the agent failed: {type(e).__name__}: {e}") from None
        if progress:
            progress(i + 1, len(tokens))
    return out


def default_path(out_dir: str | os.PathLike[str]) -> Path:
    """``<out_dir>/submission.pkl``."""
    return Path(out_dir) / "submission.pkl"


# ---------------------------------------------------------------------------------------------- the command
@dataclass
class SubmitConfig:
    """Settings of ``irl-vla submit`` (``configs/submit.yaml``): see the comments there."""

    data_root: str = "data"
    split: str = "synth_navtest"
    version: str = "auto"
    agent: str = "constant_velocity"
    source: str = "embedded"
    navsim_root: str | None = None
    maps_root: str | None = None
    split_file: str | None = None
    team: TeamInfo = field(default_factory=TeamInfo)
    output: str = "outputs/submissions/synth_navtest/submission.pkl"
    check: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.version not in ("auto", "v1", "v2"):
            raise ValueError(f"SubmitConfig.version: {self.version!r} is not auto, v1 or v2")
        check_source("SubmitConfig", self.source, self.navsim_root)
        if self.source == "navsim" and self.version == "v2":
            raise ValueError("SubmitConfig.version: v2 reads embedded stage-2 scenes; use source=embedded")


def _plan_of(agent: Any, source: Any, previous: dict[str, str] | None = None) -> Callable[[str], Trajectory]:
    """Plans of ``agent`` for tokens of ``source`` (``previous``: token -> the scene it precedes).

    The agent's sensors come from the NAVSIM reader's sensor blobs, or are rendered for embedded scenes.
    """
    sensors: SensorConfig = agent.get_sensor_config()
    from_blobs = isinstance(source, OpenSceneLoader)
    renderer = None

    def plan(token: str) -> Trajectory:
        nonlocal renderer
        if previous is not None and token in previous:
            scene = source.get_previous_scene(previous[token])
            if scene is None or scene.token != token:
                raise KeyError(f"no scene {token} before {previous[token]}")
        else:
            scene = source.get_scene(token, sensors) if from_blobs and sensors.needs_any else source.get_scene(token)
        if sensors.needs_any and not from_blobs:
            from sim_bridges.embedded.render.sensors import SensorRenderer

            renderer = renderer or SensorRenderer()
            renderer.attach(scene, sensors)
        return agent.compute_trajectory(scene.get_agent_input())

    return plan


def run_submit(cfg: SubmitConfig, source_factory: Callable[[], Any] | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the submission of ``cfg.agent`` on ``cfg.split`` and check it; returns its path and summary.

    Raises:
        ValueError: for a privileged agent, a failing token (named), or a written file that fails its check.
    """
    from irl_vla.common.progress import ProgressBar
    from irl_vla.data.split import SceneLoader
    from irl_vla.data.two_stage import TWO_STAGE_FILE, read_groups, two_stage_dir
    from irl_vla.evaluation.agents import make_agent

    agent = make_agent(cfg.agent)
    if agent.requires_scene or agent.reads_metric_cache:
        raise ValueError(f"agent {cfg.agent!r} is privileged (reads the scene or the metric cache): not submittable")
    agent.initialize()
    split_dir = Path(cfg.data_root) / cfg.split
    stage_two = two_stage_dir(split_dir)
    version = cfg.version
    if version == "auto":
        version = "v2" if source_factory is None and (stage_two / TWO_STAGE_FILE).is_file() else "v1"
    source = source_factory() if source_factory is not None else SceneLoader(split_dir)
    stages: dict[str, dict[str, Trajectory]] = {}
    expected: dict[str, list[str]] = {}
    with ProgressBar(f"submit {cfg.agent}", cfg.progress, unit="scene") as bar:
        if version == "v1":
            expected["predictions"] = list(source.tokens)
            stages["predictions"] = predictions(expected["predictions"], _plan_of(agent, source), bar)
        else:
            groups = read_groups(stage_two / TWO_STAGE_FILE)
            first = [t for g in groups for t in (g.orig, g.prev)]
            second = [t for g in groups for pair in g.pairs for t in pair]
            expected = {"first_stage_predictions": first, "second_stage_predictions": second}
            previous = {g.prev: g.orig for g in groups}
            stages["first_stage_predictions"] = predictions(first, _plan_of(agent, source, previous), bar)
            stages["second_stage_predictions"] = predictions(second, _plan_of(agent, SceneLoader(stage_two)), bar)
    path = Path(cfg.output)
    write_submission(path, build_submission(cfg.team, stages))
    summary, problems = check_submission(path, expected)
    if problems:
        raise ValueError(f"{path}: the written submission fails its check: {problems[:5]}")
    return path, {**summary, "agent": cfg.agent, "split": cfg.split}
