"""``irl-vla bench world``: embedded-world throughput: scene generation, sensor rendering, training-time loading.

* generation: build, roll out (10 Hz, with the audit), label and cut logs of every family, no sensors;
  scenes/s counts the scenes the split settings cut from those logs; the record also gives the median (and
  10th percentile) number of road users (vehicles, people, cyclists) annotated within 60 m per frame;
* rendering: the default rig (3 cameras) and the LiDAR on frames of every family, rig frames/s;
* loading: scene from a log file on disk (decode cached per log, as in training) + default rig at the current
  frame + the tensors a policy reads (stacked images, ego history, command), samples/s.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from irl_vla.benchmarks.timing import median_seconds, record
from irl_vla.common.config import require_at_least
from irl_vla.data.enums import AgentClass
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.split import SceneLoader
from scenarios.registry import load_families
from sim_bridges.embedded.generate import GenerateConfig, SplitSpec, Task, generate_log, generate_split
from sim_bridges.embedded.render.sensors import SensorRenderer

SUITE = "world"
#: Annotated classes counted as road users (vehicles, people, cyclists; not cones, barriers or signs).
ROAD_USER_CLASSES = frozenset({AgentClass.VEHICLE.value, AgentClass.PEDESTRIAN.value, AgentClass.BICYCLE.value})


@dataclass
class WorldBenchConfig:
    """Sizes of the world benchmark (``configs/bench/world.yaml``).

    Attributes:
        logs_per_family: logs generated per family and repeat for the generation measurement.
        num_log_frames: 2 Hz frames per log.
        frame_interval: frames between scene windows (as ``synth_navtrain``).
        render_frames: frames (spread over the families) rendered per repeat.
        load_samples: scenes loaded per repeat.
    """

    logs_per_family: int = 1
    num_log_frames: int = 40
    frame_interval: int = 2
    render_frames: int = 44
    load_samples: int = 64

    def __post_init__(self) -> None:
        require_at_least(
            self, ("logs_per_family", "num_log_frames", "frame_interval", "render_frames", "load_samples"), 1
        )


def policy_features(scene: Any) -> dict[str, torch.Tensor]:
    """The tensors a policy reads from an agent input: images (C, H, W*cams), ego history, command."""
    agent_input = scene.get_agent_input()
    cams = agent_input.cameras[-1]
    images = np.concatenate([cams[name].image for name in sorted(cams)], axis=1)  # (H, W*cams, 3)
    status = np.stack(
        [np.concatenate([s.ego_pose, s.ego_velocity, s.ego_acceleration]) for s in agent_input.ego_statuses]
    )
    return {
        "images": torch.from_numpy(images).permute(2, 0, 1).float().div_(255.0),
        "ego_history": torch.from_numpy(status).float(),
        "command": torch.from_numpy(agent_input.current.driving_command).float(),
    }


def run(cfg: WorldBenchConfig, repeats: int) -> Iterator[dict[str, Any]]:
    """Yield one record per measurement."""
    families = load_families()
    gen_cfg = GenerateConfig(num_log_frames=cfg.num_log_frames, workers=1, progress=False)
    tasks = [Task("bench", name, i, fam.hard) for name, fam in families.items() for i in range(cfg.logs_per_family)]
    scenes: list[int] = []
    users: list[int] = []  # road users within the annotation radius (60 m), per logged frame

    def generate() -> None:
        scenes.clear()
        users.clear()
        for task in tasks:
            rec, _, _ = generate_log(task, families[task.family], gen_cfg, cfg.frame_interval)
            scenes.append(len(rec.scenes))
            users.extend(sum(n in ROAD_USER_CLASSES for n in f.annotations.names) for f in rec.frames)

    t, _ = median_seconds(generate, repeats=repeats, warmup=0)
    yield record(
        SUITE,
        "generate_scenes",
        items=sum(scenes),
        seconds=t,
        unit="scenes",
        logs=len(tasks),
        median_road_users_60m=float(np.median(users)),
        p10_road_users_60m=float(np.percentile(users, 10)),
    )

    with tempfile.TemporaryDirectory() as tmp:
        spec = SplitSpec(logs_per_family=1, frame_interval=5)
        manifest = generate_split(
            "bench", spec, GenerateConfig(data_root=tmp, num_log_frames=24, workers=1, progress=False)
        )
        loader = SceneLoader(Path(tmp) / "bench")
        tokens = manifest.tokens
        renderer = SensorRenderer()
        frames = [(scene.current_frame, scene.map_api) for scene in map(loader.get_scene, tokens)]
        picks = [frames[i % len(frames)] for i in range(cfg.render_frames)]
        for frame, map_api in frames:
            renderer.render_cameras(frame, map_api)  # build each map's ground raster once, as a loader would

        t, _ = median_seconds(lambda: [renderer.render_cameras(f, m) for f, m in picks], repeats=repeats)
        yield record(
            SUITE,
            "render_rig_3_cameras",
            items=len(picks),
            seconds=t,
            unit="rig_frames",
            resolution=f"{renderer.rig.width}x{renderer.rig.height}",
        )
        t, _ = median_seconds(lambda: [renderer.render_lidar(f, m) for f, m in picks], repeats=repeats)
        yield record(
            SUITE,
            "render_lidar",
            items=len(picks),
            seconds=t,
            unit="sweeps",
            rays=renderer.lidar.config.beams * renderer.lidar.config.azimuths,
        )

        sensor_config = SensorConfig(cameras={name: [3] for name in renderer.cameras})
        # A training sampler reads scenes shard by shard (log by log), so each log is decoded once per pass.
        order = [tokens[i % len(tokens)] for i in range(cfg.load_samples)]
        order.sort(key=lambda tok: (loader.entry(tok).log_name, tok))

        def load() -> None:
            for tok in order:
                scene = renderer.attach(loader.get_scene(tok), sensor_config)
                policy_features(scene)

        t, _ = median_seconds(load, repeats=repeats)
        yield record(SUITE, "load_scene_sensors_features", items=len(order), seconds=t, unit="samples")

        def decode() -> None:
            loader._cache.clear()
            for entry in loader.manifest.logs:
                loader.log(entry)

        t, _ = median_seconds(decode, repeats=repeats)
        yield record(SUITE, "decode_log_records", items=len(loader.manifest.logs), seconds=t, unit="logs")
