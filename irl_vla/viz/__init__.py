"""Drawing closed-loop steps: the BEV, cameras and HUD as one RGB frame, the live pygame viewer, recordings.

``render_view`` is a pure function from a ``StepView`` to an RGB array; ``irl_vla.viz.viewer`` (the only module
of the suite that imports pygame) shows those frames and reads keys; ``FrameRecorder`` writes them to MP4, GIF
or PNG files.
"""

from irl_vla.viz.controls import KeyAction, ViewerState
from irl_vla.viz.projection import BevConfig
from irl_vla.viz.recorder import FrameRecorder, RecordFormat
from irl_vla.viz.render import ViewConfig, render_view

__all__ = ["BevConfig", "FrameRecorder", "KeyAction", "RecordFormat", "ViewConfig", "ViewerState", "render_view"]
