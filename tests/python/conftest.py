"""Fixtures: a kvmon process with a QMP socket, for the real qemu.qmp client."""

import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def kvmon_bin() -> str:
    """$KVMON_BIN (relative to the workspace root), else the release build."""
    path = os.environ.get("KVMON_BIN", "target/release/kvmon")
    path = ROOT / path
    assert path.exists(), f"{path} is missing: run `cargo build --release`"
    return str(path)


class Kvmon:
    """A running `kvmon -machine none -S` with its QMP socket at `self.socket`."""

    def __init__(self, directory: pathlib.Path, extra=()):
        self.socket = directory / "qmp.sock"
        self.stderr_path = directory / "stderr"
        args = [kvmon_bin(), "-machine", "none", "-S",
                "-qmp", f"unix:{self.socket},server=on,wait=off", *extra]
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(str(self.socket))
                break
            except OSError:
                assert self.process.poll() is None, self.stderr()
                assert time.monotonic() < deadline, "kvmon never listened"
                time.sleep(0.005)

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def workdir():
    # Short: Unix socket paths must fit in 107 bytes.
    directory = pathlib.Path(tempfile.mkdtemp(prefix="kvp-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def kvmon(workdir):
    vmm = Kvmon(workdir)
    yield vmm
    vmm.stop()
