"""A KVM guest (kvmon's default firmware) driven through its life by the
real qemu.qmp client, as a QEMU guest is."""

from qemu.qmp import QMPClient

from conftest import run

RUNNING = {"status": "running", "running": True}


def test_a_guest_through_stop_cont_reset_and_the_power_button(guest):
    async def scenario():
        qmp = QMPClient("guest")
        await qmp.connect(str(guest.socket))
        try:
            guest.wait_for_serial("kvmon firmware 0.1.0: the machine is up.")
            guest.wait_for_serial("Idle; press the power button")
            assert await qmp.execute("query-status") == RUNNING
            cpus = await qmp.execute("query-cpus-fast")
            assert [cpu["cpu-index"] for cpu in cpus] == [0, 1]
            assert all(cpu["target"] == "x86_64" for cpu in cpus)

            with qmp.listener(("STOP", "RESUME", "RESET", "POWERDOWN", "SHUTDOWN")) as events:
                await qmp.execute("stop")
                assert (await events.get())["event"] == "STOP"
                assert (await qmp.execute("query-status"))["status"] == "paused"
                await qmp.execute("cont")
                assert (await events.get())["event"] == "RESUME"

                await qmp.execute("system_reset")
                reset = await events.get()
                assert reset["event"] == "RESET"
                assert reset["data"] == {"guest": False, "reason": "host-qmp-system-reset"}
                # The firmware boots again and waits for the button.
                guest.wait_for_serial("Idle; press the power button", count=2)

                await qmp.execute("system_powerdown")
                assert (await events.get())["event"] == "POWERDOWN"
                shutdown = await events.get()
                assert shutdown["event"] == "SHUTDOWN"
                assert shutdown["data"] == {"guest": True, "reason": "guest-shutdown"}
        finally:
            await qmp.disconnect()

    run(scenario())
    assert guest.process.wait(timeout=10) == 0
    assert "Power button pressed: powering off." in guest.serial()
