"""``irl-vla bench navsim``: NAVSIM bridge throughput on ``synth_navtest`` logs, one process.

* export: one log to an OpenScene pickle, with and without its sensors (all eight cameras and the LiDAR);
* read: every scene of the exported logs through a fresh ``OpenSceneLoader`` (pickles decoded, the merged map
  read), without sensors and with the front camera and LiDAR at the current frame; the same scenes from the
  embedded split through a fresh ``SceneLoader`` side by side;
* map: the split's merged map written to and read from a nuPlan GeoPackage;
* sizes: bytes of a log as an OpenScene pickle and as the suite's gzip JSON record.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from irl_vla.benchmarks.timing import median_seconds, record
from irl_vla.common.config import require_at_least
from irl_vla.data.map import MapLayer
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.source import FrameRenderer
from irl_vla.data.split import SceneLoader
from sim_bridges.navsim.export import ExportConfig, export_log, merged_map
from sim_bridges.navsim.nuplan_map import read_map, write_map_root
from sim_bridges.navsim.openscene import LOG_SUFFIX, OpenSceneFilter, OpenSceneLoader

SUITE = "navsim"


@dataclass
class NavsimBenchConfig:
    """Sizes of the NAVSIM bridge benchmark (``configs/bench/navsim.yaml``).

    Attributes:
        split_dir: embedded split exported (generate it first).
        num_logs: logs exported and read per repeat.
    """

    split_dir: str = "data/synth_navtest"
    num_logs: int = 4

    def __post_init__(self) -> None:
        require_at_least(self, ("num_logs",), 1)


def run(cfg: NavsimBenchConfig, repeats: int, renderer: Callable[[], FrameRenderer]) -> Iterator[dict[str, Any]]:
    """Yield one record per measurement (sensors drawn by the renderer ``renderer`` builds; the command gives it)."""
    split_dir = Path(cfg.split_dir)
    if not (split_dir / "manifest.json").is_file():
        raise FileNotFoundError(f"{split_dir}: no split to benchmark on; run `irl-vla generate` first")
    embedded = SceneLoader(split_dir)
    entries = embedded.manifest.logs[: cfg.num_logs]
    logs = [e.log_name for e in entries]
    with tempfile.TemporaryDirectory() as tmp:
        base = ExportConfig(data_root=str(split_dir.parent), split=split_dir.name, out_root=tmp, workers=1)
        bare = replace(base, cameras=[], lidar=False)
        frames = sum(len(embedded.log(e).frames) for e in entries)
        tokens = [t for e in entries for t in e.scene_tokens]
        for name, export in (("export_log_pickle_only", bare), ("export_log_with_sensors", base)):
            seconds, _ = median_seconds(
                lambda export=export: [export_log(str(split_dir), n, k, export, renderer) for k, n in enumerate(logs)],
                repeats=repeats,
            )
            yield record(
                SUITE, name, items=len(logs), seconds=seconds, unit="logs", frames_per_s=round(frames / seconds, 1)
            )

        reader_filter = OpenSceneFilter(frame_interval=1, tokens=tuple(tokens))
        maps = Path(tmp) / "maps"
        amap = merged_map(embedded, base)
        seconds, _ = median_seconds(lambda: write_map_root(maps, amap), repeats=repeats)
        objects = len(amap.all_objects())
        yield record(SUITE, "map_write_gpkg", items=objects, seconds=seconds, unit="objects")
        path = write_map_root(maps, amap)
        seconds, _ = median_seconds(lambda: read_map(path), repeats=repeats)
        lanes = len(amap.objects(MapLayer.LANE))
        yield record(SUITE, "map_read_gpkg", items=objects, seconds=seconds, unit="objects", lanes=lanes)

        def loader() -> OpenSceneLoader:
            return OpenSceneLoader(
                Path(tmp) / "navsim_logs" / split_dir.name,
                maps,
                Path(tmp) / "sensor_blobs" / split_dir.name,
                reader_filter,
            )

        def read_all(open_source: Callable[[], Any], sensors: SensorConfig | None = None) -> None:
            source = open_source()  # a fresh reader: logs decoded and the map read inside the timing
            for token in tokens:
                source.get_scene(token) if sensors is None else source.get_scene(token, sensors)

        seconds, _ = median_seconds(lambda: read_all(loader), repeats=repeats)
        yield record(SUITE, "read_scenes_navsim_cold", items=len(tokens), seconds=seconds, unit="scenes")
        seconds, _ = median_seconds(lambda: read_all(lambda: SceneLoader(split_dir)), repeats=repeats)
        yield record(SUITE, "read_scenes_embedded_cold_same_run", items=len(tokens), seconds=seconds, unit="scenes")
        sensors = SensorConfig(cameras={"cam_f0": [3]}, lidar_pc=[3])
        seconds, _ = median_seconds(lambda: read_all(loader, sensors), repeats=repeats)
        yield record(SUITE, "read_scenes_navsim_cold_cam_f0_lidar", items=len(tokens), seconds=seconds, unit="scenes")
        seconds, _ = median_seconds(loader, repeats=repeats)
        yield record(SUITE, "open_split_index_logs", items=len(logs), seconds=seconds, unit="logs")

        pickle_bytes = sum(
            (Path(tmp) / "navsim_logs" / split_dir.name / f"{n}{LOG_SUFFIX}").stat().st_size for n in logs
        )
        record_bytes = sum((split_dir / e.file).stat().st_size for e in entries)
        yield {
            "suite": SUITE,
            "name": "log_sizes",
            "openscene_pickle_bytes_per_log": pickle_bytes // len(logs),
            "suite_record_bytes_per_log": record_bytes // len(logs),
        }
