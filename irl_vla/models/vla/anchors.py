"""Planning anchors: K-means of expert trajectories (the training command computes them; checkpoints keep them).

Clusters are formed on the xy waypoints (all poses together, Euclidean); an anchor's heading at each pose is
the circular mean of its members' headings. Initialisation is k-means++ from a seeded generator, so the same
trajectories and seed always give the same anchors.
"""

from __future__ import annotations

import torch
from torch import Tensor

from irl_vla.data.enums import SE2Index

_XY = [SE2Index.X, SE2Index.Y]


def _kmeans_plus_plus(points: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """Initial centres ``(K, F)`` of ``points`` ``(N, F)``: each next centre drawn with probability ~ d^2."""
    first = int(torch.randint(points.shape[0], (1,), generator=generator))
    centres = [points[first]]
    nearest = ((points - centres[0]) ** 2).sum(-1)  # (N,)
    for _ in range(1, k):
        total = float(nearest.sum())
        if total <= 0:  # fewer distinct points than clusters: repeat one (it stays empty and is reseeded)
            index = int(torch.randint(points.shape[0], (1,), generator=generator))
        else:
            index = int(torch.multinomial(nearest / total, 1, generator=generator))
        centres.append(points[index])
        nearest = torch.minimum(nearest, ((points - points[index]) ** 2).sum(-1))
    return torch.stack(centres)


def compute_anchors(trajectories: Tensor, num_anchors: int, *, iterations: int = 100, seed: int = 0) -> Tensor:
    """K-means anchors of expert trajectories.

    Args:
        trajectories: ``(N, T, 3)`` poses by ``SE2Index`` [m, m, rad] in each sample's ego frame.
        num_anchors: clusters (K).
        iterations: Lloyd iterations at most (stops early when assignments no longer change).
        seed: seed of the k-means++ initialisation.

    Returns:
        Anchors ``(K, T, 3)`` float32, sorted by final x (shortest first) so that the order is canonical.

    Raises:
        ValueError: on a bad shape, non-finite poses, or fewer trajectories than anchors.
    """
    if trajectories.dim() != 3 or trajectories.shape[-1] != len(SE2Index):
        raise ValueError(f"compute_anchors: expected trajectories (N, T, 3), got {tuple(trajectories.shape)}")
    n, t, _ = trajectories.shape
    if n < num_anchors:
        raise ValueError(f"compute_anchors: {n} trajectories cannot make {num_anchors} anchors")
    if not bool(torch.isfinite(trajectories).all()):
        raise ValueError("compute_anchors: trajectories hold non-finite poses")
    traj = trajectories.double()
    points = traj[..., _XY].reshape(n, t * len(_XY))  # (N, T 2)
    generator = torch.Generator().manual_seed(seed)
    centres = _kmeans_plus_plus(points, num_anchors, generator)  # (K, T 2)
    assign = torch.full((n,), -1, dtype=torch.long)
    for _ in range(iterations):
        new_assign = torch.cdist(points, centres).argmin(-1)  # (N,)
        counts = torch.bincount(new_assign, minlength=num_anchors)
        for empty in torch.nonzero(counts == 0).flatten().tolist():  # reseed with the worst-fitted point
            worst = int(((points - centres[new_assign]) ** 2).sum(-1).argmax())
            centres[empty] = points[worst]
            new_assign[worst] = empty
        if torch.equal(new_assign, assign):
            break
        assign = new_assign
        sums = torch.zeros_like(centres).index_add_(0, assign, points)
        centres = sums / torch.bincount(assign, minlength=num_anchors).clamp_min(1)[:, None]
    heading = traj[..., SE2Index.HEADING]  # (N, T)
    cos = torch.zeros(num_anchors, t, dtype=traj.dtype).index_add_(0, assign, torch.cos(heading))
    sin = torch.zeros(num_anchors, t, dtype=traj.dtype).index_add_(0, assign, torch.sin(heading))
    anchors = torch.empty(num_anchors, t, len(SE2Index), dtype=traj.dtype)
    anchors[..., _XY] = centres.reshape(num_anchors, t, len(_XY))
    anchors[..., SE2Index.HEADING] = torch.atan2(sin, cos)
    order = torch.argsort(anchors[:, -1, SE2Index.X], stable=True)
    return anchors[order].float()
