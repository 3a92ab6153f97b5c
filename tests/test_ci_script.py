"""`.ci/run` stops at the first failing step: run it against stub commands that fail one at a time."""
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

CI = Path(__file__).resolve().parents[1] / ".ci"
STEPS = ("apt-get", "torchvision-venv", "pip", "pytest", "cpp-tests", "fuzz-tests", "neon-tests")
SCRIPTS = ("-tests", "-venv")  # steps that are scripts in .ci/, not commands on the PATH


def _executable(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def run_ci(tmp_path: Path, failing: str | None) -> tuple[int, list[str]]:
    """Runs a copy of .ci/run where every step is a stub that logs its name; `failing` exits 1."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(CI / "run", tmp_path / ".ci" / "run")
    log, bin_dir = tmp_path / "steps.log", tmp_path / "bin"
    bin_dir.mkdir()
    for step in STEPS:
        body = f'echo {step} >> "{log}"\n' + ("exit 1\n" if step == failing else "")
        target = tmp_path / ".ci" / f"{step}.sh" if step.endswith(SCRIPTS) else bin_dir / step
        _executable(target, body)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    rc = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], env=env, capture_output=True).returncode
    return rc, log.read_text().split() if log.exists() else []


def test_every_step_runs_when_all_pass(tmp_path):
    rc, ran = run_ci(tmp_path, None)
    assert rc == 0 and ran == ["apt-get", "apt-get", "torchvision-venv", "pip", "pytest", "cpp-tests", "fuzz-tests",
                               "neon-tests"]


@pytest.mark.parametrize("failing", ["torchvision-venv", "pip", "pytest", "cpp-tests", "fuzz-tests"])
def test_a_failing_step_stops_the_run(tmp_path, failing):
    rc, ran = run_ci(tmp_path, failing)
    assert rc != 0, f"{failing} failed but .ci/run exited 0 after running {ran}"
    assert ran[-1] == failing, f"steps after the failing {failing} still ran: {ran}"
