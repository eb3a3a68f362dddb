"""kvmon driven by the real qemu.qmp client from PyPI, as QEMU is."""

import asyncio
import subprocess

import pytest
from qemu.qmp import EventListener, ExecuteError, QMPClient
from qemu.qmp.legacy import QEMUMonitorProtocol

from conftest import kvmon_bin, run

PRELAUNCH = {"status": "prelaunch", "running": False}


def test_qmpclient_connects_negotiates_oob_and_executes(kvmon):
    async def scenario():
        qmp = QMPClient("test")
        await qmp.connect(str(kvmon.socket))
        try:
            version = qmp.greeting.QMP.version
            assert version["qemu"]["major"] >= 5
            assert version["package"].startswith("kvmon-")
            # qemu.qmp enables oob whenever the greeting offers it; an
            # exec-oob fails unless the negotiation did.
            assert "oob" in qmp.greeting.QMP.capabilities
            assert await qmp.execute("query-yank", oob=True) == [
                {"type": "chardev", "id": "compat_monitor0"}]
            assert await qmp.execute("query-status") == PRELAUNCH
            assert await qmp.execute("query-target") == {"arch": "x86_64"}
            commands = await qmp.execute("query-commands")
            assert {"name": "human-monitor-command"} in commands
        finally:
            await qmp.disconnect()

    run(scenario())


def test_events_arrive_at_listeners_before_the_return(kvmon):
    async def scenario():
        qmp = QMPClient("events")
        await qmp.connect(str(kvmon.socket))
        try:
            with qmp.listener(("RESUME", "STOP")) as listener:
                await qmp.execute("cont")
                # The event was read before the return, so it is queued.
                assert not listener.empty()
                resume = await listener.get()
                assert resume["event"] == "RESUME"
                assert set(resume["timestamp"]) == {"seconds", "microseconds"}
                await qmp.execute("stop")
                assert not listener.empty()
                assert (await listener.get())["event"] == "STOP"
            assert (await qmp.execute("query-status"))["status"] == "paused"
        finally:
            await qmp.disconnect()

    run(scenario())


def test_errors_raise_execute_error_with_qemus_class_and_text(kvmon):
    async def scenario():
        qmp = QMPClient("errors")
        await qmp.connect(str(kvmon.socket))
        try:
            with pytest.raises(ExecuteError) as unknown:
                await qmp.execute("no-such-command")
            assert unknown.value.error_class == "CommandNotFound"
            assert unknown.value.error.error.desc == "The command no-such-command has not been found"
            with pytest.raises(ExecuteError) as bad:
                await qmp.execute("human-monitor-command", {"command-line": 1})
            assert bad.value.error_class == "GenericError"
            assert bad.value.error.error.desc == (
                "Invalid parameter type for 'command-line', expected: string")
            with pytest.raises(ExecuteError) as not_oob:
                await qmp.execute("query-status", oob=True)
            assert not_oob.value.error.error.desc == "The command query-status does not support OOB"
            # The connection lives on.
            assert await qmp.execute("query-status") == PRELAUNCH
        finally:
            await qmp.disconnect()

    run(scenario())


def test_human_monitor_commands(kvmon):
    async def scenario():
        qmp = QMPClient("hmp")
        await qmp.connect(str(kvmon.socket))
        try:
            hmp = lambda line: qmp.execute("human-monitor-command", {"command-line": line})
            assert await hmp("info status") == "VM status: paused (prelaunch)\r\n"
            assert await hmp("c") == ""
            assert await hmp("info status") == "VM status: running\r\n"
            assert await hmp("info kvm") == "kvm support: disabled\r\n"
            assert (await hmp("help")).startswith("cont|c  -- resume emulation\r\n")
            assert await hmp("bogus") == "unknown command: 'bogus'\r\n"
        finally:
            await qmp.disconnect()

    run(scenario())


def test_many_clients_at_once_each_with_every_event(kvmon):
    async def scenario():
        clients = [QMPClient(f"c{n}") for n in range(100)]
        await asyncio.gather(*(c.connect(str(kvmon.socket)) for c in clients))
        listeners = [EventListener("RESUME") for _ in clients]
        for client, listener in zip(clients, listeners):
            client.register_listener(listener)
        try:
            await clients[0].execute("cont")
            events = await asyncio.gather(*(asyncio.wait_for(l.get(), 5) for l in listeners))
            assert len({e["timestamp"]["microseconds"] for e in events}) == 1
            statuses = await asyncio.gather(*(c.execute("query-status") for c in clients))
            assert all(s["status"] == "running" for s in statuses)
        finally:
            await asyncio.gather(*(c.disconnect() for c in clients))

    run(scenario())


def test_quit_ends_kvmon_with_status_zero(kvmon):
    async def scenario():
        qmp = QMPClient("quit")
        await qmp.connect(str(kvmon.socket))
        with qmp.listener("SHUTDOWN") as listener:
            assert await qmp.execute("quit") == {}
            assert not listener.empty()
            shutdown = await listener.get()
        assert shutdown["data"] == {"guest": False, "reason": "host-qmp-quit"}
        # The server hangs up after quit: qemu.qmp reports the end of file
        # from disconnect(), with QEMU as with kvmon.
        try:
            await qmp.disconnect()
        except EOFError:
            pass

    run(scenario())
    assert kvmon.process.wait(10) == 0
    assert not kvmon.socket.exists()


def test_legacy_synchronous_client(kvmon):
    qmp = QEMUMonitorProtocol(str(kvmon.socket))
    greeting = qmp.connect(negotiate=True)
    assert greeting["QMP"]["capabilities"] == ["oob"]
    assert qmp.cmd("query-status") == PRELAUNCH
    assert qmp.cmd_obj({"execute": "query-name", "id": "x"}) == {"return": {}, "id": "x"}
    qmp.close()


def test_legacy_client_accepts_kvmon_connecting_out(workdir):
    """QEMU's harness listens and starts the VMM in client mode."""
    path = workdir / "harness.sock"
    qmp = QEMUMonitorProtocol(str(path), server=True)
    vmm = subprocess.Popen([kvmon_bin(), "-display", "none", "-vga", "none", "-machine", "none",
                            "-chardev", f"socket,id=mon,path={path}",
                            "-mon", "chardev=mon,mode=control"])
    try:
        qmp.accept(timeout=15)
        assert qmp.cmd("query-status")["status"] == "running"
        qmp.cmd("quit")
        assert vmm.wait(10) == 0
    finally:
        qmp.close()
        if vmm.poll() is None:
            vmm.kill()


def test_qmp_shell_reads_commands_from_stdin(kvmon):
    # qmp-shell splits arguments at blanks: one-word HMP commands only.
    shell = subprocess.run(["qmp-shell", str(kvmon.socket)],
                           input="query-status\ncont\nquery-name\nhuman-monitor-command command-line=info\n",
                           capture_output=True, text=True, timeout=30)
    assert shell.returncode == 0, shell.stderr
    assert "Connected to QEMU 10.0.0" in shell.stdout
    assert '{"return": {"status": "prelaunch", "running": false}}' in shell.stdout
    assert '{"return": {}}' in shell.stdout
    assert "info status  -- show the current VM status (running|paused)" in shell.stdout


def test_qmp_shell_wrap_launches_kvmon(workdir):
    """qmp-shell-wrap listens on a relative path and starts the VMM in client
    mode.  Once the VMM quits, qemu.qmp 0.0.6 ends with an EOFError traceback,
    with QEMU as with kvmon; what matters is that the session ran."""
    shell = subprocess.run(["qmp-shell-wrap", kvmon_bin(), "-machine", "none", "-S"],
                           input="query-status\nquit\n", capture_output=True, text=True,
                           timeout=30, cwd=workdir)
    assert '{"return": {"status": "prelaunch", "running": false}}' in shell.stdout, shell.stderr
    assert '{"return": {}}' in shell.stdout, "quit was answered"
    assert not list(workdir.iterdir()), "qmp-shell-wrap removed its socket"
