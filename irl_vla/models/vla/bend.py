"""Anchors bent along the road ahead: the planner's K anchors laid onto the route head's predicted centreline.

The anchors are K-means centres of the expert's trajectories in the ego frame; on a straight road the "keep
going" anchors are straight lines. Where the road bends, the planner has to learn to bend every such mode
itself, and imitation alone taught it mostly from the ego status (docs/results.md, "The road in the LiDAR").
``bend_anchors`` reads each anchor pose ``(x, y, heading)`` as a position along and across a straight road
(arc length ``s = x``, lateral offset ``y``) and moves it to the same place relative to the predicted
centreline: ``C(s) + y * n(s)``, heading ``heading + theta(s)``, where ``C`` and ``theta`` interpolate the
centreline's poses linearly between its points (the ego at ``s = 0`` first) and extrapolate the first and last
segments beyond them; ``n`` is the centreline's left normal. A straight centreline leaves the anchors as they are.

The centreline is the network's own prediction from its sensors, ego status and command (never the map), and
it is detached: the planning loss does not move it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from irl_vla.data.enums import SE2Index
from irl_vla.models.vla.loss import wrap_angle


def bend_anchors(anchors: Tensor, centerline: Tensor, spacing: float) -> Tensor:
    """Lay anchors onto a centreline.

    Args:
        anchors: ``(K, T, 3)`` [m, m, rad] in the ego frame, x read as arc length along the road.
        centerline: ``(B, P, 3)`` [m, m, rad] the centreline's poses at arc lengths ``spacing``, ``2 * spacing``,
            ..., ``P * spacing`` ahead of the ego.
        spacing: arc length between the centreline's points [m].

    Returns:
        ``(B, K, T, 3)`` the bent anchors [m, m, rad].
    """
    b, p = centerline.shape[:2]
    origin = anchors.new_zeros(b, 1, len(SE2Index))
    knots = torch.cat([origin, centerline.detach().to(anchors.dtype)], dim=1)  # (B, P + 1, 3), s = 0, d, ..., P d
    s = anchors[..., SE2Index.X] / spacing  # (K, T) arc length in knot intervals
    segment = s.floor().clamp(0, p - 1).long()  # (K, T): the segment each pose lies on (or extrapolates)
    frac = s - segment  # (K, T), outside [0, 1] where extrapolated
    k, t = segment.shape
    flat = segment.flatten().expand(b, -1)  # (B, K T)
    lo = torch.gather(knots, 1, flat[..., None].expand(-1, -1, len(SE2Index))).view(b, k, t, len(SE2Index))
    hi = torch.gather(knots, 1, (flat + 1)[..., None].expand(-1, -1, len(SE2Index))).view(b, k, t, len(SE2Index))
    w = frac[None, ..., None]  # (1, K, T, 1)
    xy = lo[..., : SE2Index.HEADING] + w * (hi[..., : SE2Index.HEADING] - lo[..., : SE2Index.HEADING])  # (B, K, T, 2)
    turn = wrap_angle(hi[..., SE2Index.HEADING] - lo[..., SE2Index.HEADING])
    theta = lo[..., SE2Index.HEADING] + frac.clamp(0.0, 1.0)[None] * turn  # (B, K, T): heading held beyond the ends
    lateral = anchors[..., SE2Index.Y][None]  # (1, K, T)
    x = xy[..., 0] - lateral * torch.sin(theta)
    y = xy[..., 1] + lateral * torch.cos(theta)
    heading = wrap_angle(anchors[..., SE2Index.HEADING][None] + theta)
    return torch.stack([x, y, heading], dim=-1)
