"""``irl-vla bench viewer``: frames/s of the live viewer on real scenes, and of recording them.

Each view is one scene of an embedded split with its cameras rendered, the logged expert future as the plan and
``num_candidates`` candidates with synthetic rewards (``irl_vla.viz.demo``). Measured, each as frames/s over all
views (median of ``repeats`` passes):

- ``bev``: the BEV alone (``render_bev``);
- ``frame``: the whole frame (BEV, colour bar, cameras, HUD with a full 30 s episode chart; ``render_view``);
- ``record_<fmt>``: encoding rendered frames to a file (MP4 or GIF), without rendering;
- ``window``: ``PygameViewer.update`` (render, blit, flip, key poll) with SDL's dummy video driver when the
  machine has no display (``window_driver``).

Beside the wall time, each record gives the CPU time of this process and of the child processes it waited for
(ffmpeg) as ``cpu_frames_per_s``: on a shared, loaded machine the wall time mostly measures the others' jobs.
The scene source is given by the command (``tools/run_bench.py``); camera rendering is not timed.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from irl_vla.benchmarks.timing import record
from irl_vla.common.config import require_at_least
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.source import SourceFactory
from irl_vla.envs.view import StepView
from irl_vla.viz.bev import render_bev
from irl_vla.viz.demo import scene_view
from irl_vla.viz.recorder import FrameRecorder, RecordFormat
from irl_vla.viz.render import ViewConfig, render_view
from irl_vla.viz.timeline import Timeline

SUITE = "viewer"


@dataclass
class ViewerBenchConfig:
    """Sizes of the viewer benchmark (``configs/bench/viewer.yaml``).

    Attributes:
        split_dir: the embedded split the scenes come from (generate it first).
        num_scenes: views per timed pass (scenes spread evenly over the split).
        num_candidates: K candidates drawn per view.
        cameras: cameras rendered into each view (the embedded rig's names).
        record_formats: recording formats timed (``mp4``, ``gif``).
        window: time the pygame window too.
        window_driver: SDL video driver used for the window when no display is set (``dummy``: headless).
        seed: seed of the synthetic candidates and rewards.
    """

    split_dir: str = "data/synth_navtest"
    num_scenes: int = 16
    num_candidates: int = 20
    cameras: list[str] = field(default_factory=lambda: ["cam_l0", "cam_f0", "cam_r0"])
    record_formats: list[str] = field(default_factory=lambda: ["mp4"])
    window: bool = True
    window_driver: str = "dummy"
    seed: int = 0

    def __post_init__(self) -> None:
        require_at_least(self, ("num_scenes", "num_candidates"), 1)
        for fmt in self.record_formats:
            if fmt not in (RecordFormat.MP4.value, RecordFormat.GIF.value):
                raise ValueError(f"ViewerBenchConfig.record_formats: expected mp4 or gif, got {fmt!r}")


def load_views(cfg: ViewerBenchConfig, source: SourceFactory) -> list[StepView]:
    """The benchmark's views: ``num_scenes`` scenes spread over the split, cameras at the current frame."""
    loader = source()
    tokens = list(loader.tokens)
    picks = np.linspace(0, len(tokens) - 1, min(cfg.num_scenes, len(tokens))).round().astype(int)
    views = []
    for i, index in enumerate(picks):
        scene = loader.get_scene(tokens[index])
        current = scene.scene_metadata.num_history_frames - 1
        sensors = SensorConfig(cameras={name: [current] for name in cfg.cameras})
        views.append(scene_view(loader.get_scene(tokens[index], sensors), cfg.num_candidates, cfg.seed + i, i))
    return views


def _cpu_seconds() -> float:
    """CPU time of this process and of its waited-for children [s]."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and median CPU time [s] of ``fn()`` over ``repeats`` runs after one untimed run."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), _cpu_seconds()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(_cpu_seconds() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _record(name: str, n: int, times: tuple[float, float], **extra: Any) -> dict[str, Any]:
    wall, cpu = times
    cpu_rate = round(n / cpu, 2) if cpu > 0 else float("inf")
    return record(SUITE, name, items=n, seconds=wall, unit="frames", cpu_frames_per_s=cpu_rate, **extra)


def run(cfg: ViewerBenchConfig, repeats: int, source: SourceFactory) -> Iterator[dict[str, Any]]:
    """Yield one record per measurement (frames/s)."""
    views = load_views(cfg, source)
    layout = ViewConfig()
    n = len(views)
    users = float(np.mean([len(v.frame.annotations) for v in views]))
    extra = {"views": n, "candidates": cfg.num_candidates, "mean_objects": round(users, 1), "size": layout.size}

    yield _record("bev", n, timed(lambda: [render_bev(v, layout.bev) for v in views], repeats), **extra)
    rng = np.random.default_rng(cfg.seed)
    steps = np.arange(60)  # a full 30 s chart
    chart = Timeline("bench", list(0.5 * steps), list(rng.uniform(0, 1, 60)), list(rng.uniform(0, 1, 60)))
    yield _record("frame", n, timed(lambda: [render_view(v, layout, None, chart) for v in views], repeats), **extra)

    frames = [render_view(v, layout) for v in views]
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in cfg.record_formats:

            def encode(fmt: str = fmt) -> None:
                recorder = FrameRecorder(Path(tmp) / f"bench.{fmt}", fps=2.0)
                for frame in frames:
                    recorder.write(frame)
                recorder.close()

            times = timed(encode, repeats)
            size = (Path(tmp) / f"bench.{fmt}").stat().st_size
            yield _record(f"record_{fmt}", n, times, bytes_per_frame=size // n)

    if cfg.window:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ.setdefault("SDL_VIDEODRIVER", cfg.window_driver)
        from irl_vla.viz.viewer import PygameViewer, ViewerConfig

        viewer = PygameViewer(ViewerConfig(layout=layout))
        try:
            times = timed(lambda: [viewer.update(v) for v in views], repeats)
        finally:
            viewer.close()
        yield _record("window", n, times, video_driver=os.environ.get("SDL_VIDEODRIVER", "default"), **extra)
