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

from irl_vla.agents.agent import Agent
from irl_vla.agents.registry import submittable_agent
from irl_vla.common.config_source import SceneSourceConfig
from irl_vla.common.io import DataFormatError, atomic_open
from irl_vla.common.progress import ProgressBar
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.source import SceneSource, SceneSources
from irl_vla.data.split import MANIFEST, SceneLoader, embedded_sources
from irl_vla.data.trajectory import Trajectory
from irl_vla.data.two_stage import TWO_STAGE_FILE, Group, read_groups, two_stage_dir
from sim_bridges.navsim import pickles
from sim_bridges.navsim.openscene import open_navsim_split, read_scene_filter

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
    """The metadata of a submission (``submit.team.<key>=...``): the leaderboard shows it."""

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
    """Load a submission with the restricted unpickler and list what the leaderboard server would refuse.

    Checked offline, as the server does: the metadata keys, the prediction keys of one version (v1
    ``predictions``: a list of one dict per seed; v2 ``first_stage_predictions`` and
    ``second_stage_predictions``: exactly one dict each), every value a complete navsim ``Trajectory`` with
    finite poses of its sampling's shape, and, given ``expected``, a plan for every token of the split and
    none for a token outside it (each named).

    Args:
        path: the pickle.
        expected: per prediction key, the split's tokens (``split_tokens``); ``None``: completeness is not checked.

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
    if expected is not None and not set(keys) <= set(expected):
        problems.append(f"a {version} submission, but the split has only {sorted(expected)} to predict")
    counts = {}
    for key in keys:
        value = doc.get(key)
        seeds = 1 if version == "v2" else None  # v2: the server supports one seed only
        if (
            not isinstance(value, list)
            or not value
            or (seeds is not None and len(value) != seeds)
            or not all(isinstance(v, dict) for v in value)
        ):
            shape = "exactly one dict" if seeds else "one dict per seed"
            problems.append(f"{key}: expected a list holding {shape} of token -> Trajectory")
            continue
        counts[key] = len(value[0])
        for seed, plans in enumerate(value):
            where = key if len(value) == 1 else f"{key}[seed {seed}]"
            bad_keys = [t for t in plans if not isinstance(t, str)]
            if bad_keys:
                problems.append(f"{where}: tokens must be strings, got {bad_keys[:3]}")
            for token, trajectory in plans.items():
                problems += _check_trajectory(trajectory, f"{where}[{token!r}]")
            if expected is not None and key in expected:
                want = set(expected[key])
                missing, extra = sorted(want - set(plans)), sorted(set(plans) - want, key=str)
                if missing:
                    problems.append(f"{where}: {len(missing)} tokens of the split missing: {_named(missing)}")
                if extra:
                    problems.append(f"{where}: {len(extra)} tokens of no split scene: {_named(extra)}")
    unknown = sorted(set(doc) - set(METADATA_KEYS) - set(keys), key=str)
    if unknown:
        problems.append(f"unexpected keys {unknown}")
    summary = {"version": version, "team_name": doc.get("team_name"), "tokens": counts}
    return summary, problems


def _named(tokens: list[Any], limit: int = 20) -> str:
    """Tokens listed by name (the first ``limit``, then how many more)."""
    shown = ", ".join(str(t) for t in tokens[:limit])
    return shown + (f" and {len(tokens) - limit} more" if len(tokens) > limit else "")


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


# ---------------------------------------------------------------------------------------------- the split's tokens
def split_tokens(tokens: list[str], groups: list[Group] | None = None) -> dict[str, list[str]]:
    """What a submission of a split must predict, per prediction key.

    Args:
        tokens: the split's scene tokens (v1 ``predictions``).
        groups: its two-stage groups, if it has them: stage 1 is each group's real scene and its predecessor,
            stage 2 every token of its (now, previous) pairs.
    """
    out = {"predictions": list(tokens)}
    if groups is not None:
        out["first_stage_predictions"] = [t for g in groups for t in (g.orig, g.prev)]
        out["second_stage_predictions"] = [t for g in groups for pair in g.pairs for t in pair]
    return out


def split_file_tokens(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """What a submission must predict by a navsim ``train_test_split`` yaml.

    v1: ``scene_filter.tokens``. v2: stage 1 from ``tokens`` (else the real scenes of the mapping), stage 2 the
    tokens of the mapping's pairs (``reactive_all_mapping`` or ``all_mapping``: groups ``[orig, prev, [[now,
    prev], ...]]``), else ``reactive_synthetic_initial_tokens``.

    Raises:
        DataFormatError: naming the file when it lists no tokens (its scenes then depend on the logs: check
            against the NAVSIM root instead) or a group is malformed.
    """
    sf = read_scene_filter(path)
    mapping = sf.get("reactive_all_mapping", sf.get("all_mapping"))
    tokens = sf.get("tokens")
    out: dict[str, list[str]] = {}
    if tokens is not None:
        out["predictions"] = [str(t) for t in tokens]
    if mapping is not None:
        try:
            first = [str(t) for group in mapping for t in group[:2]]
            second = [str(t) for group in mapping for pair in group[2] for t in pair]
        except (TypeError, IndexError) as e:
            raise DataFormatError(f"{path}: bad two-stage mapping ({type(e).__name__}: {e})") from None
        out["first_stage_predictions"] = out.get("predictions", first)
        out["second_stage_predictions"] = second
    elif sf.get("reactive_synthetic_initial_tokens") is not None:
        out["first_stage_predictions"] = out.get("predictions", [])
        out["second_stage_predictions"] = [str(t) for t in sf["reactive_synthetic_initial_tokens"]]
    if not out or not any(out.values()):
        raise DataFormatError(
            f"{path}: lists no scene tokens (its scenes depend on the logs): check against the NAVSIM root "
            "(submit.source=navsim submit.navsim_root=...) instead"
        )
    return out


# ---------------------------------------------------------------------------------------------- the command
@dataclass
class SubmitConfig(SceneSourceConfig):
    """Settings of ``irl-vla submit`` (``submit.<key>=...``; ``irl-vla submit --help`` lists them with defaults).

    The scene source's keys (``data_root``, ``navsim_root``, ``maps_root``, ``sensor_cache``) are
    ``SceneSourceConfig``'s.

    Attributes:
        split: the split to submit; with ``check=<file>``, the split whose tokens the file must hold (``None``:
            check the format only, and say that completeness was not checked).
        version: ``v1`` (navtest: ``predictions``), ``v2`` (two-stage: first and second stage predictions) or
            ``auto`` (``v2`` where ``<split>_two_stage`` exists, else ``v1``).
        agent: the agent by name (``configs/agent``); privileged agents (human, pdm_closed) are refused.
            ``agent=<name>`` selects one with its settings instead.
        source: ``embedded`` or ``navsim`` (a NAVSIM data root; see ``eval``).
        split_file: a navsim ``train_test_split`` yaml (with ``check=``: its tokens, or its two-stage mapping).
        team: the leaderboard's metadata (``TeamInfo``).
        output: the submission file; ``None``: ``submission.pkl`` in the run directory
            ``<output_root>/submit/<split>/<timestamp>/``.
        check: path of a submission to validate instead of writing one (``irl-vla submit check=<file>``).
        progress: show a progress bar (follows ``run.progress``).
    """

    split: str | None = "synth_navtest"  # type: ignore[assignment]  # None: check=<file> checks the format only
    version: str = "auto"
    agent: str = "constant_velocity"
    team: TeamInfo = field(default_factory=TeamInfo)
    output: str | None = None
    check: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.split is None and self.check is None:
            raise ValueError("SubmitConfig.split: required to write a submission (null only with check=<file>)")
        if self.version not in ("auto", "v1", "v2"):
            raise ValueError(f"SubmitConfig.version: {self.version!r} is not auto, v1 or v2")
        if self.source == "navsim" and self.version == "v2":
            raise ValueError("SubmitConfig.version: v2 reads embedded stage-2 scenes; use source=embedded")


def tokens_to_check(cfg: SubmitConfig) -> tuple[dict[str, list[str]] | None, str]:
    """The tokens ``check=<file>`` compares a submission against, and where they came from.

    From ``cfg.split_file`` (a navsim split yaml listing tokens), else the NAVSIM root's split
    (``source=navsim``), else the embedded split ``<data_root>/<split>`` (with its stage-2 groups). ``split:
    null`` checks the format only: ``(None, <why>)``.

    Raises:
        FileNotFoundError: when the named split does not exist (a check never silently skips completeness).
    """
    if cfg.split_file is not None and cfg.source != "navsim":
        return split_file_tokens(cfg.split_file), f"split file {cfg.split_file}"
    if cfg.split is None:
        return None, "no split given (submit.split, submit.split_file or submit.navsim_root)"
    if cfg.source == "navsim":
        assert cfg.navsim_root is not None
        loader = open_navsim_split(cfg.navsim_root, cfg.split, cfg.maps_root, cfg.split_file)
        return split_tokens(loader.tokens), f"NAVSIM split {cfg.split} of {cfg.navsim_root}"
    split_dir = Path(cfg.data_root) / cfg.split
    if not (split_dir / MANIFEST).is_file():
        raise FileNotFoundError(
            f"{split_dir}: no split to check the submission's tokens against; generate it, name another "
            "(submit.split, submit.split_file, submit.source=navsim submit.navsim_root=...), or pass "
            "submit.split=null to check the format only"
        )
    groups_file = two_stage_dir(split_dir) / TWO_STAGE_FILE
    groups = read_groups(groups_file) if groups_file.is_file() else None
    return split_tokens(SceneLoader(split_dir).tokens, groups), f"split {split_dir}"


def _plan_of(
    agent: Agent, source: SceneSource, previous: dict[str, str] | None = None
) -> Callable[[str], Trajectory]:
    """Plans of ``agent`` for tokens of ``source`` (``previous``: token -> the scene it precedes).

    Every scene comes with exactly the sensors the agent asks for (read or rendered by the source).
    """
    sensors: SensorConfig = agent.get_sensor_config()

    def plan(token: str) -> Trajectory:
        if previous is not None and token in previous:
            scene = source.get_previous_scene(previous[token], sensors)
            if scene is None or scene.token != token:
                raise KeyError(f"no scene {token} before {previous[token]}")
        else:
            scene = source.get_scene(token, sensors)
        return agent.compute_trajectory(scene.get_agent_input())

    return plan


def run_submit(
    cfg: SubmitConfig, sources: SceneSources | None = None, agent_spec: Any = None
) -> tuple[Path, dict[str, Any]]:
    """Write the submission of an agent on ``cfg.split`` and check it; returns its path and summary.

    Args:
        cfg: settings.
        sources: the split's scenes (and stage-2 scenes) with the command's renderer or the NAVSIM reader;
            ``None``: the embedded split without a renderer (agents that read sensors are refused).
        agent_spec: the agent by name or settings (``configs/agent``); ``None``: ``cfg.agent``.

    Raises:
        ValueError: for a privileged agent, a failing token (named), or a written file that fails its check.
    """
    if cfg.output is None:
        raise ValueError("SubmitConfig.output: not set (irl-vla submit writes into its run directory)")
    agent = submittable_agent(cfg.agent if agent_spec is None else agent_spec)
    agent.initialize()
    if sources is None:
        if cfg.source != "embedded":
            raise ValueError(f"run_submit: source={cfg.source} needs its reader (irl-vla submit passes it)")
        sources = embedded_sources(Path(cfg.data_root) / cfg.split)
    version = cfg.version
    if version == "auto":
        version = "v2" if sources.stage_two is not None else "v1"
    if version == "v2" and sources.stage_two is None:
        raise ValueError(f"run_submit: a v2 submission of {cfg.split} needs its stage-2 scenes")
    source = sources.split()
    stages: dict[str, dict[str, Trajectory]] = {}
    split_dir = Path(cfg.data_root) / str(cfg.split)
    groups = read_groups(two_stage_dir(split_dir) / TWO_STAGE_FILE) if version == "v2" else None
    expected = split_tokens(source.tokens, groups)
    with ProgressBar(f"submit {agent.name()}", cfg.progress, unit="scene") as bar:
        if version == "v1":
            stages["predictions"] = predictions(list(expected["predictions"]), _plan_of(agent, source), bar)
        else:
            assert sources.stage_two is not None and groups is not None
            previous = {g.prev: g.orig for g in groups}
            first, second = expected["first_stage_predictions"], expected["second_stage_predictions"]
            stages["first_stage_predictions"] = predictions(list(first), _plan_of(agent, source, previous), bar)
            stages["second_stage_predictions"] = predictions(list(second), _plan_of(agent, sources.stage_two()), bar)
    path = Path(cfg.output)
    write_submission(path, build_submission(cfg.team, stages))
    summary, problems = check_submission(path, {k: expected[k] for k in stages})
    if problems:
        raise ValueError(f"{path}: the written submission fails its check: {problems[:5]}")
    return path, {**summary, "agent": agent.name(), "split": cfg.split}
