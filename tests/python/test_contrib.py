"""contrib/: the systemd units verify, and the system unit keeps its sandbox."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT

UNITS = REPO_ROOT / "contrib/systemd"


def analyze(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, env=env)


@pytest.fixture()
def units(tmp_path, timbred):
    """The units with ExecStart pointing at the built binary (verify checks that it exists)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian: systemd)")
    out = {}
    for name, source in (("system", UNITS / "timbred.service"), ("user", UNITS / "user/timbred.service")):
        folder = tmp_path / name
        folder.mkdir()
        unit = folder / "timbred.service"
        unit.write_text(source.read_text().replace("/usr/local/bin/timbred", str(timbred)))
        out[name] = unit
    return out


def test_units_verify(units, tmp_path):
    system = analyze("verify", "--man=no", str(units["system"]))
    assert system.returncode == 0, system.stderr
    # A user manager needs a runtime directory; a container without a session has none.
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    user = analyze("--user", "verify", "--man=no", str(units["user"]), env=dict(os.environ, XDG_RUNTIME_DIR=str(runtime)))
    assert user.returncode == 0, user.stderr


def test_the_system_unit_is_sandboxed(units):
    report = analyze("security", "--offline=yes", str(units["system"]))
    level = re.search(r"Overall exposure level for timbred\.service: ([0-9.]+)", report.stdout + report.stderr)
    assert level, report.stdout + report.stderr
    # 10 is unconfined; the unit measured 1.9 when written (no privileges, read-only system and
    # home, own state directory only).
    assert float(level.group(1)) <= 2.5, report.stdout
