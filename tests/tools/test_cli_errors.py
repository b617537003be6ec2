"""Bad input gives one clean line and exit status 2; tracebacks only on request; Ctrl-C prints one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.cli import INTERRUPTED, main


def test_bad_input_is_one_line_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("IRL_VLA_DEBUG", "HYDRA_FULL_ERROR"):
        monkeypatch.delenv(var, raising=False)
    assert main(["eval", f"paths.data_root={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Error executing job" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("irl-vla eval: error: ") and "manifest.json" in lines[0]
    assert main(["bench", "core", "no_such_key=1"]) == 2  # an unknown override is bad input too
    assert "no_such_key" in capsys.readouterr().err


@pytest.mark.parametrize("var", ["IRL_VLA_DEBUG", "HYDRA_FULL_ERROR"])
def test_debug_variables_show_the_traceback(
    var: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(var, "1")
    assert main(["eval", f"paths.data_root={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "irl-vla eval: error: " in err
    assert os.environ[var] == "1"  # restored as the user set it


@pytest.mark.slow
def test_ctrl_c_prints_one_line_and_exits_130(tmp_path: Path) -> None:
    env = {**os.environ, "IRL_VLA_DATA_ROOT": str(tmp_path / "data"), "IRL_VLA_OUTPUT_ROOT": str(tmp_path / "out")}
    env.pop("IRL_VLA_DEBUG", None)
    env.pop("HYDRA_FULL_ERROR", None)
    cmd = [sys.executable, "-m", "tools.cli", "generate", "generate.progress=false"]
    # a terminal's program starts with Ctrl-C at its default action; a test run launched in the background
    # (`cmd &`, nohup) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt: restore the default
    proc = subprocess.Popen(
        cmd,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(8.0)  # well into generation (imports, workers started)
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == INTERRUPTED, err
    assert "Traceback" not in err, err
    assert "interrupted" in err and "rerun" in err
