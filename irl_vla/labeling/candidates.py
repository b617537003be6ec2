"""The candidate trajectories of a scene: the expert, a vocabulary, perturbations of the expert, policy samples.

Every candidate has a counterpart in the previous frame of the same log (for EC): the expert's plan there, the
same vocabulary entry, the same perturbation applied to the previous expert plan, the policy's sample drawn with
the same seed. ``Perturbation`` describes one perturbation as data, so both frames apply the same one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from irl_vla.data.enums import XY, SE2Index
from irl_vla.labeling.store import CandidateSource

#: Displacement between poses below which a recomputed heading keeps the original one [m].
MIN_HEADING_STEP = 0.05


@dataclass(frozen=True)
class Perturbation:
    """A perturbation of a plan.

    Attributes:
        speed_scale: the perturbed plan is at time t where the original is at ``speed_scale * t`` (past its
            end it continues the last segment's velocity).
        lateral_offset: [m] to the left at the plan's end, growing linearly in time from 0 at t = 0.
        heading_offset: [rad] the whole plan rotated about the ego's rear axle, counter-clockwise.
    """

    speed_scale: float = 1.0
    lateral_offset: float = 0.0
    heading_offset: float = 0.0


@dataclass
class PerturbationConfig:
    """Perturbations of the expert per scene: a fixed set, then random combinations.

    Attributes:
        speed_scales: each alone.
        lateral_offsets: [m] each alone.
        heading_offsets: [rad] each alone.
        random: random combinations per scene, each drawn uniformly from the ranges below (seeded by the run's
            seed and the scene token).
        speed_range: ``[low, high]`` of a random speed scale.
        lateral_range: ``[low, high]`` [m] of a random lateral offset.
        heading_range: ``[low, high]`` [rad] of a random heading offset.
    """

    speed_scales: list[float] = field(default_factory=lambda: [0.0, 0.5, 0.8, 1.2, 1.5])
    lateral_offsets: list[float] = field(default_factory=lambda: [-2.0, -1.0, -0.5, 0.5, 1.0, 2.0])
    heading_offsets: list[float] = field(default_factory=lambda: [-0.2, -0.1, 0.1, 0.2])
    random: int = 16
    speed_range: list[float] = field(default_factory=lambda: [0.3, 1.6])
    lateral_range: list[float] = field(default_factory=lambda: [-3.0, 3.0])
    heading_range: list[float] = field(default_factory=lambda: [-0.3, 0.3])

    def __post_init__(self) -> None:
        if self.random < 0:
            raise ValueError(f"PerturbationConfig.random: expected >= 0, got {self.random}")
        for name in ("speed_range", "lateral_range", "heading_range"):
            lo_hi = getattr(self, name)
            if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1]:
                raise ValueError(f"PerturbationConfig.{name}: expected [low, high], got {lo_hi}")
        if min([*self.speed_scales, self.speed_range[0]]) < 0:
            raise ValueError("PerturbationConfig: speed scales must be >= 0")

    @property
    def count(self) -> int:
        """Perturbations per scene."""
        return len(self.speed_scales) + len(self.lateral_offsets) + len(self.heading_offsets) + self.random

    def draw(self, seed: int, token: str) -> list[Perturbation]:
        """The scene's perturbations: the fixed set, then ``random`` combinations seeded by ``(seed, token)``."""
        out = [Perturbation(speed_scale=s) for s in self.speed_scales]
        out += [Perturbation(lateral_offset=d) for d in self.lateral_offsets]
        out += [Perturbation(heading_offset=h) for h in self.heading_offsets]
        rng = np.random.default_rng(scene_seed(seed, token))
        for _ in range(self.random):
            out.append(
                Perturbation(
                    float(rng.uniform(*self.speed_range)),
                    float(rng.uniform(*self.lateral_range)),
                    float(rng.uniform(*self.heading_range)),
                )
            )
        return out


def scene_seed(seed: int, token: str) -> int:
    """A 63-bit seed of ``(seed, token)`` (the same in every process)."""
    digest = hashlib.sha256(f"{seed}:{token}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def headings_from_positions(poses: np.ndarray) -> np.ndarray:
    """Headings ``(..., T)`` along the xy path of ``poses`` ``(..., T, 3)`` (from the origin, the ego's rear axle).

    Where a step is shorter than ``MIN_HEADING_STEP`` the pose keeps its own heading.
    """
    xy = poses[..., XY]
    prev = np.concatenate([np.zeros_like(xy[..., :1, :]), xy[..., :-1, :]], axis=-2)
    step = xy - prev  # (..., T, 2)
    moved = np.linalg.norm(step, axis=-1) > MIN_HEADING_STEP
    along = np.arctan2(step[..., 1], step[..., 0])
    return np.where(moved, along, poses[..., SE2Index.HEADING])


def perturb(plan: np.ndarray, p: Perturbation, interval: float) -> np.ndarray:
    """``plan`` ``(T, 3)`` (poses ``interval`` [s] apart from t = interval) perturbed by ``p``; ``(T, 3)``."""
    t_count = plan.shape[0]
    path = np.concatenate([np.zeros((1, 3)), plan.astype(np.float64)])  # (T+1, 3) from t = 0
    times = np.arange(t_count + 1) * interval
    query = p.speed_scale * times[1:]  # (T,)
    out = np.empty((t_count, 3))
    for c in (SE2Index.X, SE2Index.Y):
        out[:, c] = np.interp(query, times, path[:, c])
        beyond = query > times[-1]  # continue the last segment's velocity
        velocity = (path[-1, c] - path[-2, c]) / interval
        out[beyond, c] = path[-1, c] + velocity * (query[beyond] - times[-1])
    out[:, SE2Index.HEADING] = np.interp(query, times, np.unwrap(path[:, SE2Index.HEADING]))
    if p.lateral_offset:
        ramp = times[1:] / times[-1]  # (T,) 0 -> 1
        heading = out[:, SE2Index.HEADING]
        out[:, SE2Index.X] -= p.lateral_offset * ramp * np.sin(heading)
        out[:, SE2Index.Y] += p.lateral_offset * ramp * np.cos(heading)
        out[:, SE2Index.HEADING] = headings_from_positions(out)
    if p.heading_offset:
        c, s = np.cos(p.heading_offset), np.sin(p.heading_offset)
        x, y = out[:, SE2Index.X].copy(), out[:, SE2Index.Y].copy()
        out[:, SE2Index.X], out[:, SE2Index.Y] = c * x - s * y, s * x + c * y
        out[:, SE2Index.HEADING] += p.heading_offset
    return out


@dataclass
class CandidateSet:
    """A scene's candidates in the label order: expert, vocabulary, policy samples, perturbations.

    Attributes:
        plans: ``(K, T, 3)`` relative plans.
        sources: ``(K,)`` ``CandidateSource``.
    """

    plans: np.ndarray
    sources: np.ndarray


def build_candidates(
    expert: np.ndarray,
    vocabulary: np.ndarray,
    perturbations: Sequence[Perturbation],
    interval: float,
    policy_samples: np.ndarray | None = None,
) -> CandidateSet:
    """The candidate set of one frame.

    Args:
        expert: the expert's plan ``(T, 3)``.
        vocabulary: ``(V, T, 3)``.
        perturbations: applied to ``expert``, in order.
        interval: time between poses [s].
        policy_samples: ``(P, T, 3)`` or ``None``.
    """
    parts = [expert[None].astype(np.float64), vocabulary.astype(np.float64)]
    sources = [CandidateSource.EXPERT] + [CandidateSource.VOCABULARY] * len(vocabulary)
    if policy_samples is not None and len(policy_samples):
        parts.append(policy_samples.astype(np.float64))
        sources += [CandidateSource.POLICY_SAMPLE] * len(policy_samples)
    if perturbations:
        parts.append(np.stack([perturb(expert, p, interval) for p in perturbations]))
        sources += [CandidateSource.PERTURBATION] * len(perturbations)
    return CandidateSet(np.concatenate(parts), np.asarray(sources, dtype=np.int8))
