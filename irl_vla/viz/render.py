"""One viewer frame: a pure function from a ``StepView`` (and the viewer's state) to an RGB array.

Layout (default 1280 x 720 px)::

    +---------------------+-----+---------------------------+
    |                     |     |  cameras (all, or one)    |
    |   BEV (ego up)      | bar +---------------------------+
    |                     |     |  HUD                      |
    +---------------------+-----+---------------------------+

The window (``irl_vla.viz.viewer``) only shows these arrays and reads keys; recording writes them, so tests and
recordings need no display.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from irl_vla.common.config import require_at_least
from irl_vla.envs.view import StepView
from irl_vla.viz.bev import render_bev
from irl_vla.viz.cameras import camera_names, render_cameras
from irl_vla.viz.controls import ViewerState
from irl_vla.viz.hud import render_colour_bar, render_hud
from irl_vla.viz.projection import BevConfig
from irl_vla.viz.timeline import Timeline


@dataclass
class ViewConfig:
    """Layout of a viewer frame.

    Attributes:
        bev: the BEV's size and scale (its height is the frame's).
        bar_width: width of the candidates' colour bar [px].
        panel_width: width of the camera and HUD column [px].
        camera_height: height of the camera panel [px]; the HUD takes the rest.
        reward_range: learned rewards at the two ends of the candidates' colour map (EPDMS estimates: 0 to 1).
    """

    bev: BevConfig = field(default_factory=BevConfig)
    bar_width: int = 60
    panel_width: int = 620
    camera_height: int = 300
    reward_range: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        require_at_least(self, ("bar_width", "panel_width", "camera_height"), 1)
        if self.camera_height >= self.bev.height:
            raise ValueError(
                f"ViewConfig.camera_height: expected < the BEV's height ({self.bev.height} px), "
                f"got {self.camera_height}"
            )
        low, high = self.reward_range
        if not high > low:
            raise ValueError(f"ViewConfig.reward_range: expected (low, high) with high > low, got {self.reward_range}")
        self.reward_range = (float(low), float(high))  # a yaml list becomes the tuple

    @property
    def size(self) -> tuple[int, int]:
        """Frame (width, height) [px]."""
        return self.bev.width + self.bar_width + self.panel_width, self.bev.height


def render_view(
    view: StepView,
    config: ViewConfig | None = None,
    state: ViewerState | None = None,
    timeline: Timeline | None = None,
) -> npt.NDArray[np.uint8]:
    """The viewer frame of ``view`` as an RGB array ``(H, W, 3)``.

    Args:
        view: the step to draw.
        config: the layout (default ``ViewConfig()``).
        state: the viewer's state (which camera, candidates shown, paused); None draws the defaults without the
            status line.
        timeline: the episode up to this step, charted in the HUD and drawn as the ego's trail (None: neither).
    """
    config = config or ViewConfig()
    show_candidates = state.show_candidates if state is not None else True
    width, height = config.size
    out = np.empty((height, width, 3), dtype=np.uint8)  # (H, W, 3)
    bev_w = config.bev.width
    trail = timeline.positions[:-1] if timeline is not None else ()  # the current position is the ego itself
    out[:, :bev_w] = render_bev(
        view, config.bev, show_candidates=show_candidates, value_range=config.reward_range, trail=trail
    )
    has_rewards = view.candidate_rewards is not None
    if has_rewards or view.learned_reward is not None:
        title = "learned reward"
    else:
        title = "no reward model" if view.candidates is None else "agent score (rank)"
    marks = view.candidate_rewards if has_rewards and show_candidates else ()
    bar_range = config.reward_range if has_rewards or view.candidates is None else (0.0, 1.0)
    out[:, bev_w : bev_w + config.bar_width] = render_colour_bar(
        config.bar_width, height, bar_range, title, marks, view.learned_reward
    )
    x0 = bev_w + config.bar_width
    selected = state.camera_name(camera_names(view.cameras)) if state is not None else None
    out[: config.camera_height, x0:] = render_cameras(view.cameras, config.panel_width, config.camera_height, selected)
    out[config.camera_height :, x0:] = render_hud(
        view, config.panel_width, height - config.camera_height, state, timeline
    )
    return out
