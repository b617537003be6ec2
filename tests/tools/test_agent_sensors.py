"""An agent that declares cameras sees rendered images in ``eval`` and ``submit``, from the embedded split and
from an exported NAVSIM root alike (the same pixels within JPEG tolerance)."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from irl_vla.agents import registry
from irl_vla.agents.agent import AgentConfig
from irl_vla.agents.constant_velocity import ConstantVelocityAgent
from irl_vla.data.scene import AgentInput, Scene
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.trajectory import Trajectory
from sim_bridges.embedded.generate import GenerateConfig, SplitSpec, generate_split
from sim_bridges.embedded.two_stage import TwoStageSpec, generate_two_stage
from sim_bridges.navsim.export import ExportConfig, export_split
from tests.sim_bridges.navsim.standins import navsim_modules
from tools.cli import main
from tools.sources import navsim_renderer

SEEN: list[tuple[float, np.ndarray]] = []  # (current speed [m/s], front image) per call, in call order


class CameraProbe(ConstantVelocityAgent):
    """Reads the front and rear cameras at the current frame and records what it saw."""

    def name(self) -> str:
        return "camera_probe"

    def get_sensor_config(self) -> SensorConfig:
        return SensorConfig(cameras={"cam_f0": [3], "cam_b0": [3]})

    def compute_trajectory(self, agent_input: AgentInput, scene: Scene | None = None) -> Trajectory:
        current = agent_input.cameras[-1]
        assert sorted(current) == ["cam_b0", "cam_f0"] and all(c == {} for c in agent_input.cameras[:-1])
        image = current["cam_f0"].image
        assert image is not None and image.ndim == 3 and image.std() > 5.0  # a picture, not a blank
        SEEN.append((float(np.linalg.norm(agent_input.current.ego_velocity)), image))
        return super().compute_trajectory(agent_input, scene)


@pytest.fixture(autouse=True)
def _probe_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    entry = registry.AgentEntry(CameraProbe, AgentConfig, "test agent reading cameras")
    monkeypatch.setitem(registry.AGENTS, "camera_probe", entry)
    SEEN.clear()
    yield


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    data = tmp_path_factory.mktemp("data")
    cfg = GenerateConfig(data_root=str(data), families=["cut_in"], num_log_frames=25, workers=1, progress=False)
    generate_split("synth_navtest", SplitSpec(logs_per_family=1, frame_interval=5), cfg)
    generate_split("synth_navhard", SplitSpec(logs_per_family=1, hard_only=True, frame_interval=5), cfg)
    generate_two_stage(data / "synth_navhard", TwoStageSpec(pairs_per_group=2), workers=1)
    navsim = tmp_path_factory.mktemp("navsim")
    export = ExportConfig(data_root=str(data), out_root=str(navsim), cameras=["cam_f0", "cam_b0"], lidar=False,
                          workers=1, progress=False)  # fmt: skip
    export_split(export, renderer=navsim_renderer(export.image_width))
    return data, navsim


def _seen() -> list[tuple[float, np.ndarray]]:
    out = list(SEEN)
    SEEN.clear()
    return out


def _same_pixels(rendered: list[tuple[float, np.ndarray]], read: list[tuple[float, np.ndarray]]) -> None:
    """Pairs by speed (both sources hold the same frames); images equal within JPEG quality-95 tolerance."""
    by_speed = {round(v, 6): image for v, image in read}
    assert len(rendered) >= 3 and {round(v, 6) for v, _ in rendered} <= set(by_speed)
    for v, image in rendered:
        other = by_speed[round(v, 6)]
        assert image.shape == other.shape
        assert np.abs(image.astype(float) - other.astype(float)).mean() < 3.0


def test_eval_delivers_the_agents_cameras_from_either_source(roots: tuple[Path, Path]) -> None:
    data, navsim = roots
    base = [f"paths.data_root={data}", f"paths.output_root={data / 'out'}", "eval.workers=1", "eval.progress=false",
            "eval.agents=[camera_probe]"]  # fmt: skip
    assert main(["eval", *base]) == 0
    rendered = _seen()
    assert main(["eval", *base, "eval.source=navsim", f"eval.navsim_root={navsim}"]) == 0
    read = _seen()
    _same_pixels(rendered, read)
    assert main(["eval", *base, f"eval.sensor_cache={data / 'sensor_cache'}"]) == 0  # cached renders: same pixels
    cached = _seen()
    assert main(["eval", *base, f"eval.sensor_cache={data / 'sensor_cache'}"]) == 0
    for (_, a), (_, b) in zip(cached, _seen(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any((data / "sensor_cache").rglob("cam_f0.png"))


def test_two_stage_eval_delivers_cameras_for_stage_two_scenes(roots: tuple[Path, Path]) -> None:
    data, _ = roots
    assert main(["eval", f"paths.data_root={data}", f"paths.output_root={data / 'out'}", "eval.split=synth_navhard",
                 "eval.workers=1", "eval.progress=false", "eval.agents=[camera_probe]"]) == 0  # fmt: skip
    assert len(_seen()) == 2 + 2 * 2  # the real scene and its predecessor, then two (now, previous) pairs


def test_agent_selects_one_agent_and_its_settings(roots: tuple[Path, Path], tmp_path: Path) -> None:
    data, _ = roots
    assert main(["eval", f"paths.data_root={data}", f"paths.output_root={tmp_path}", "eval.workers=1",
                 "eval.progress=false", "agent=constant_velocity", "agent.num_poses=4"]) == 0  # fmt: skip
    written = sorted(p.name for p in (tmp_path / "eval" / "synth_navtest" / "latest").iterdir() if p.is_dir())
    assert written == ["constant_velocity"] and not _seen()  # instead of eval.agents; the probe never ran
    assert main(["eval", f"paths.data_root={data}", "agent=constant_velocity", "agent.speed=3"]) != 0


def test_submit_delivers_the_agents_cameras_from_either_source(roots: tuple[Path, Path], tmp_path: Path) -> None:
    data, navsim = roots
    base = [f"paths.data_root={data}", "submit.agent=camera_probe", "submit.progress=false"]
    out_a, out_b = tmp_path / "a.pkl", tmp_path / "b.pkl"
    assert main(["submit", *base, f"submit.output={out_a}"]) == 0
    rendered = _seen()
    navsim_args = ["submit.source=navsim", f"submit.navsim_root={navsim}", f"submit.output={out_b}"]
    assert main(["submit", *base, *navsim_args]) == 0
    _same_pixels(rendered, _seen())
    with navsim_modules():
        a, b = pickle.loads(out_a.read_bytes()), pickle.loads(out_b.read_bytes())
    assert set(a["predictions"][0]) <= set(b["predictions"][0])  # the NAVSIM root also lists predecessors
    assert main(["submit", *base, "submit.split=synth_navhard", f"submit.output={tmp_path / 'v2.pkl'}"]) == 0
    assert len(_seen()) == 2 + 2 * 2  # both v2 stages see cameras


def test_submit_writes_into_its_own_run_directory(
    roots: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = roots
    args = ["submit", f"paths.data_root={data}", f"paths.output_root={tmp_path}", "submit.progress=false"]
    assert main(args) == 0 and main(args) == 0
    runs = sorted(p for p in (tmp_path / "submit" / "synth_navtest").iterdir() if p.name != "latest")
    assert len(runs) == 2 and all((r / "submission.pkl").is_file() and (r / "config.yaml").is_file() for r in runs)
    assert (tmp_path / "submit" / "synth_navtest" / "latest").resolve() == runs[1].resolve()
    assert f"wrote {runs[1] / 'submission.pkl'}" in capsys.readouterr().out


def test_an_agent_asking_for_a_camera_no_source_has_fails_naming_it(
    roots: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data, navsim = roots
    base = [f"paths.data_root={data}", "submit.agent=camera_probe", "submit.progress=false",
            "submit.source=navsim", f"submit.navsim_root={navsim}"]  # fmt: skip

    class _WantsLeft(CameraProbe):
        def get_sensor_config(self) -> SensorConfig:
            return SensorConfig(cameras={"cam_l1": [3]})  # exported frames list it, but no image was written

    registry.AGENTS["camera_probe"] = registry.AgentEntry(_WantsLeft, AgentConfig, "")
    assert main(["submit", *base, f"submit.output={data / 'x.pkl'}"]) != 0
    assert "CAM_L1" in capsys.readouterr().err and not (data / "x.pkl").exists()  # the image's path is named
