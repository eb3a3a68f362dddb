"""Fixtures: a kvmon process with a QMP socket, for the real qemu.qmp client."""

import asyncio
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


def run(coroutine, timeout: float = 30):
    """Runs a client scenario to its end, failing it after `timeout` seconds."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


class Kvmon:
    """A running `kvmon -machine none -S` (or with `machine`, a guest) with
    its QMP socket at `self.socket` and its serial port in `self.serial_path`."""

    def __init__(self, directory: pathlib.Path, extra=(), machine=("-machine", "none", "-S")):
        self.socket = directory / "qmp.sock"
        self.stderr_path = directory / "stderr"
        self.serial_path = directory / "serial"
        args = [kvmon_bin(), *machine,
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

    def serial(self) -> str:
        try:
            return self.serial_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_serial(self, text: str, count: int = 1, timeout: float = 20):
        """Waits until the serial port has shown `text` `count` times."""
        deadline = time.monotonic() + timeout
        while self.serial().count(text) < count:
            assert time.monotonic() < deadline, f"no {text!r} on the serial port: {self.serial()!r}"
            time.sleep(0.005)

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


@pytest.fixture
def guest(workdir):
    """kvmon booting its default firmware on KVM: `-m 256 -smp 2`."""
    vmm = Kvmon(workdir, machine=("-m", "256", "-smp", "2",
                                  "-serial", f"file:{workdir / 'serial'}"))
    yield vmm
    vmm.stop()
