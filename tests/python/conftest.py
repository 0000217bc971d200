"""Shared fixtures for timbre's Python tests.

Run them in the project venv:

    VENV=$(scripts/python-env)
    TIMBRED=target/release/timbred "$VENV/bin/python" -m pytest tests/python

Environment:
    TIMBRED            path to the timbred binary (absolute, or relative to the
                       current directory or to the repository root).  Tests
                       that need it are skipped when it is unset or missing.
    TIMBRE_GTZAN_POOL  the real-clip pool (default: ../shared/data/gtzan-pool
                       relative to the repository root).
"""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "tests" / "data"
DEFAULT_POOL = REPO_ROOT.parent / "shared" / "data" / "gtzan-pool"

# Lines collected by tests and printed in the terminal summary, so numbers
# such as the worst dB difference are visible without `-s`.
_REPORT: list[str] = []


@pytest.fixture(scope="session")
def report():
    """report(line): print now (visible with -s) and in the final summary."""

    def add(line: str) -> None:
        print(line)
        _REPORT.append(line)

    return add


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _REPORT:
        terminalreporter.section("timbre parity report")
        for line in _REPORT:
            terminalreporter.write_line(line)


def find_timbred() -> tuple[Path | None, str]:
    """(absolute path of the timbred binary, "") or (None, what is missing)."""
    value = os.environ.get("TIMBRED", "").strip()
    if not value:
        return None, (
            "TIMBRED is not set: set it to the timbred binary, "
            "e.g. TIMBRED=target/release/timbred (after `cargo build --release`)"
        )
    candidates = [Path(value).resolve()]
    if not Path(value).is_absolute() and (REPO_ROOT / value).resolve() != candidates[0]:
        candidates.append((REPO_ROOT / value).resolve())
    for path in candidates:
        if path.is_file():
            if not os.access(path, os.X_OK):
                return None, f"TIMBRED={value}: {path} exists but is not executable"
            return path, ""
    tried = " or ".join(str(p) for p in candidates)
    return None, f"TIMBRED={value}: no such file ({tried}); build it with `cargo build --release`"


def find_gtzan_pool() -> tuple[Path | None, str]:
    """(pool directory holding MANIFEST.tsv, "") or (None, what is missing)."""
    value = os.environ.get("TIMBRE_GTZAN_POOL", "").strip()
    pool = Path(value) if value else DEFAULT_POOL
    how = f"TIMBRE_GTZAN_POOL={value}" if value else "../shared/data/gtzan-pool relative to the repository root"
    if not pool.is_dir():
        return None, f"real-clip pool not found: {pool} ({how}) does not exist"
    if not (pool / "MANIFEST.tsv").is_file():
        return None, f"real-clip pool {pool} has no MANIFEST.tsv"
    return pool.resolve(), ""


@pytest.fixture(scope="session")
def timbred() -> Path:
    """Absolute path of the timbred binary, or skip saying what is missing."""
    path, missing = find_timbred()
    if path is None:
        pytest.skip(missing)
    return path


@pytest.fixture(scope="session")
def gtzan_pool() -> Path:
    """The real-clip pool directory, or skip saying what is missing."""
    pool, missing = find_gtzan_pool()
    if pool is None:
        pytest.skip(missing)
    return pool


@pytest.fixture(scope="session")
def timbred_and_pool() -> tuple[Path, Path]:
    """Both the binary and the pool; skip naming everything that is missing."""
    (path, m1), (pool, m2) = find_timbred(), find_gtzan_pool()
    if path is None or pool is None:
        pytest.skip("; ".join(m for m in (m1, m2) if m))
    return path, pool


@dataclass
class FeaturesRun:
    returncode: int
    stdout: str
    stderr: str
    out_dir: Path
    argv: list[str]

    def describe(self) -> str:
        return (
            f"command: {' '.join(self.argv)}\nexit status: {self.returncode}\n"
            f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}"
        )


@pytest.fixture(scope="session")
def run_features(timbred):
    """run_features(files, out_dir) -> FeaturesRun for `timbred features --plugin mel`."""

    def run(files, out_dir: Path, timeout: float = 900.0, extra_args=()) -> FeaturesRun:
        out_dir.mkdir(parents=True, exist_ok=True)
        argv = [str(timbred), "features", "--plugin", "mel", *extra_args, *map(str, files), "--out", str(out_dir)]
        try:
            proc = subprocess.run(
                argv,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"`{' '.join(argv)}` did not finish within {timeout} s; stderr so far:\n{e.stderr}")
        return FeaturesRun(proc.returncode, proc.stdout, proc.stderr, out_dir, argv)

    return run


class Daemon:
    """`timbred serve` on a free loopback port with temporary folders."""

    def __init__(self, timbred: Path, root: Path, data: Path, extra_args=()):
        self.process = subprocess.Popen(
            [str(timbred), "serve", "--listen", "127.0.0.1:0", "--root", str(root), "--data-dir", str(data), *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.address = None
        for line in self.process.stderr:
            if line.startswith("timbred: serving timbre.v1 on "):
                self.address = line.split()[4]
                break
        assert self.address, "timbred exited before serving"
        # Keep reading stderr so the daemon never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.process.stderr], daemon=True).start()

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=60)


@pytest.fixture(scope="session")
def client_site(tmp_path_factory) -> Path:
    """The Python client as `pip install ./clients/python` builds it (stubs generated from
    proto/, with type stubs), in a folder both this venv and the clients venv can import."""
    pytest.importorskip("grpc_tools")
    import shutil
    import sys

    target = tmp_path_factory.mktemp("site")
    # Built from a copy, so the checkout gets no build/ or egg-info.
    source = tmp_path_factory.mktemp("build") / "python"
    shutil.copytree(REPO_ROOT / "clients/python", source)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), str(source)],
        capture_output=True,
        text=True,
        env=dict(os.environ, TIMBRE_PROTO_DIR=str(REPO_ROOT / "proto")),
    )
    assert done.returncode == 0, f"pip install ./clients/python failed:\n{done.stdout}\n{done.stderr}"
    assert (target / "timbre/v1/timbre_pb2.pyi").is_file(), "type stubs for the messages"
    assert (target / "timbre/py.typed").is_file()
    return target


@pytest.fixture(scope="session")
def timbre(client_site):
    """`import timbre`, the installed client."""
    import importlib
    import sys

    sys.path.insert(0, str(client_site))
    try:
        for name in [m for m in sys.modules if m == "timbre" or m.startswith("timbre.")]:
            del sys.modules[name]
        return importlib.import_module("timbre")
    finally:
        sys.path.remove(str(client_site))
