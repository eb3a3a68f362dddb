//! A KVM guest's whole life over QMP, with kvmon's firmware guests on this
//! host's KVM: every run-state transition and event with its exact data.

// In tests a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kvmon_tests::{cont, event, named, query_status, with_data, Client, Vmm};

const RUNNING: &str = r#"{"return": {"status": "running", "running": true}}"#;
const PAUSED: &str = r#"{"return": {"status": "paused", "running": false}}"#;
const PRELAUNCH: &str = r#"{"return": {"status": "prelaunch", "running": false}}"#;
const SHUTDOWN_STATE: &str = r#"{"return": {"status": "shutdown", "running": false}}"#;
const OK: &str = r#"{"return": {}}"#;

fn shutdown(guest: bool, reason: &str) -> String {
    with_data(
        "SHUTDOWN",
        &format!(r#"{{"guest": {guest}, "reason": "{reason}"}}"#),
    )
}

fn reset(guest: bool, reason: &str) -> String {
    with_data(
        "RESET",
        &format!(r#"{{"guest": {guest}, "reason": "{reason}"}}"#),
    )
}

/// From a VM stopped for good (shutdown held, or an internal error):
/// `cont` is refused until `system_reset`, which returns it to prelaunch;
/// then it starts again.
fn reset_and_start_again(client: &mut Client) {
    assert_eq!(
        client.command(r#"{"execute":"cont"}"#),
        r#"{"error": {"class": "GenericError", "desc": "Resetting the Virtual Machine is required"}}"#
    );
    assert_eq!(client.command(r#"{"execute":"system_reset"}"#), OK);
    assert_eq!(event(client), reset(false, "host-qmp-system-reset"));
    assert_eq!(query_status(client), PRELAUNCH);
    cont(client);
}

fn exits_with(vmm: &mut Vmm, code: i32) {
    let status = vmm.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(code), "stderr:\n{}", vmm.stderr());
}

#[test]
fn the_default_firmware_prints_its_banner_and_obeys_the_power_button() {
    let mut vmm = Vmm::guest(&["-m", "256", "-smp", "2"]);
    let mut client = vmm.negotiated();
    vmm.wait_for_serial("kvmon firmware 0.1.0: the machine is up.\r\n");
    vmm.wait_for_serial("Idle; press the power button to power off.");
    assert_eq!(query_status(&mut client), RUNNING);
    assert_eq!(client.command(r#"{"execute":"system_powerdown"}"#), OK);
    assert_eq!(event(&mut client), named("POWERDOWN"));
    assert_eq!(event(&mut client), shutdown(true, "guest-shutdown"));
    assert!(client.at_eof(Duration::from_secs(10)));
    exits_with(&mut vmm, 0);
    assert!(vmm.serial().contains("Power button pressed: powering off."));
}

#[test]
fn a_guest_poweroff_shuts_down_and_exits() {
    let mut vmm = Vmm::scenario("poweroff", &[]);
    let mut client = vmm.negotiated();
    assert_eq!(query_status(&mut client), PRELAUNCH);
    assert_eq!(vmm.serial(), "", "nothing runs before cont");
    cont(&mut client);
    assert_eq!(event(&mut client), shutdown(true, "guest-shutdown"));
    exits_with(&mut vmm, 0);
}

#[test]
fn every_guest_reset_sends_reset_and_boots_the_guest_again() {
    for scenario in ["acpi-reset", "i8042-reset", "triple-fault"] {
        let vmm = Vmm::scenario(scenario, &[]);
        let mut client = vmm.negotiated();
        cont(&mut client);
        assert_eq!(event(&mut client), reset(true, "guest-reset"), "{scenario}");
        vmm.wait_for_serial(&format!("kvmon-test: rebooted via={scenario}"));
        assert_eq!(query_status(&mut client), RUNNING);
        assert_eq!(vmm.serial().matches("kvmon-test: start").count(), 2);
    }
}

#[test]
fn no_reboot_turns_a_guest_reset_into_a_shutdown() {
    let mut vmm = Vmm::scenario("acpi-reset", &["-no-reboot"]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    assert_eq!(event(&mut client), shutdown(true, "guest-reset"));
    exits_with(&mut vmm, 0);
    assert!(!vmm.serial().contains("rebooted"));
}

#[test]
fn no_shutdown_holds_the_vm_until_system_reset_and_cont() {
    let mut vmm = Vmm::scenario("poweroff", &["-no-shutdown"]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    assert_eq!(event(&mut client), shutdown(true, "guest-shutdown"));
    assert_eq!(event(&mut client), named("STOP"));
    assert_eq!(query_status(&mut client), SHUTDOWN_STATE);
    reset_and_start_again(&mut client);
    // The guest boots again and powers off again.
    assert_eq!(event(&mut client), shutdown(true, "guest-shutdown"));
    assert_eq!(event(&mut client), named("STOP"));
    assert_eq!(vmm.serial().matches("kvmon-test: start").count(), 2);
    assert!(vmm.running());
    assert_eq!(client.command(r#"{"execute":"quit"}"#), OK);
    assert_eq!(event(&mut client), shutdown(false, "host-qmp-quit"));
    exits_with(&mut vmm, 0);
}

/// The guest's tick count so far.
fn ticks(vmm: &Vmm) -> usize {
    vmm.serial().matches("kvmon-test: tick").count()
}

fn wait_for_ticks(vmm: &Vmm, more_than: usize) {
    vmm.wait_for_output("serial", "kvmon-test: tick", more_than + 1);
}

#[test]
fn stop_and_cont_while_the_guest_runs() {
    let vmm = Vmm::scenario("count", &["-smp", "2"]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    wait_for_ticks(&vmm, 2);
    assert_eq!(client.command(r#"{"execute":"stop"}"#), OK);
    assert_eq!(event(&mut client), named("STOP"));
    assert_eq!(query_status(&mut client), PAUSED);
    // Stopped means no vCPU runs: the count stands still.
    let stopped_at = ticks(&vmm);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ticks(&vmm), stopped_at);
    assert_eq!(
        client.command(r#"{"execute":"stop"}"#),
        OK,
        "no second STOP"
    );
    cont(&mut client);
    assert_eq!(query_status(&mut client), RUNNING);
    wait_for_ticks(&vmm, stopped_at + 2);
    assert!(client.events.is_empty(), "{:?}", client.events);
}

#[test]
fn system_reset_restarts_a_running_guest_and_a_paused_one_waits_in_prelaunch() {
    let vmm = Vmm::scenario("count", &[]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    wait_for_ticks(&vmm, 1);
    assert_eq!(client.command(r#"{"execute":"system_reset"}"#), OK);
    assert_eq!(event(&mut client), reset(false, "host-qmp-system-reset"));
    assert_eq!(query_status(&mut client), RUNNING);
    wait_for_boots(&vmm, 2);

    assert_eq!(client.command(r#"{"execute":"stop"}"#), OK);
    assert_eq!(event(&mut client), named("STOP"));
    assert_eq!(client.command(r#"{"execute":"system_reset"}"#), OK);
    assert_eq!(event(&mut client), reset(false, "host-qmp-system-reset"));
    assert_eq!(query_status(&mut client), PRELAUNCH);
    cont(&mut client);
    wait_for_boots(&vmm, 3);
}

/// Waits until the guest has started `count` times.
fn wait_for_boots(vmm: &Vmm, count: usize) {
    vmm.wait_for_output("serial", "kvmon-test: start", count);
}

#[test]
fn set_action_chooses_what_resets_and_shutdowns_do() {
    let mut vmm = Vmm::scenario("idle", &[]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    assert_eq!(
        client.command(
            r#"{"execute":"set-action","arguments":{"reboot":"shutdown","shutdown":"pause"}}"#
        ),
        OK
    );
    // A reset is now a shutdown, and a shutdown a pause.
    assert_eq!(client.command(r#"{"execute":"system_reset"}"#), OK);
    assert_eq!(event(&mut client), shutdown(false, "host-qmp-system-reset"));
    assert_eq!(event(&mut client), named("STOP"));
    assert_eq!(query_status(&mut client), SHUTDOWN_STATE);
    assert_eq!(
        client.command(r#"{"execute":"set-action","arguments":{"reboot":"reset"}}"#),
        OK
    );
    assert_eq!(client.command(r#"{"execute":"system_reset"}"#), OK);
    assert_eq!(event(&mut client), reset(false, "host-qmp-system-reset"));
    assert_eq!(query_status(&mut client), PRELAUNCH);
    assert_eq!(
        client.command(r#"{"execute":"set-action","arguments":{"shutdown":"sleep"}}"#),
        r#"{"error": {"class": "GenericError", "desc": "Parameter 'shutdown' does not accept value 'sleep'"}}"#
    );
    assert_eq!(client.command(r#"{"execute":"quit"}"#), OK);
    exits_with(&mut vmm, 0);
}

#[test]
fn query_cpus_fast_names_each_vcpu_thread() {
    let vmm = Vmm::guest(&["-smp", "2", "-S"]);
    let mut client = vmm.negotiated();
    let reply: serde_json::Value =
        serde_json::from_str(&client.command(r#"{"execute":"query-cpus-fast"}"#)).unwrap();
    let cpus = reply["return"].as_array().unwrap();
    assert_eq!(cpus.len(), 2);
    for (index, cpu) in cpus.iter().enumerate() {
        assert_eq!(cpu["cpu-index"], index);
        assert_eq!(cpu["target"], "x86_64");
        assert_eq!(cpu["props"]["core-id"], index);
        assert_eq!(cpu["props"]["socket-id"], 0);
        assert_eq!(cpu["props"]["thread-id"], 0);
        let tid = cpu["thread-id"].as_i64().unwrap();
        assert_ne!(tid, i64::from(vmm.pid()));
        let comm = std::fs::read_to_string(format!("/proc/{}/task/{tid}/comm", vmm.pid()))
            .expect("the thread-id is a thread of kvmon");
        assert_eq!(comm.trim(), format!("CPU {index}/KVM"));
    }
    assert_eq!(cpus[0]["qom-path"], "/machine/unattached/device[0]");
    assert_eq!(cpus[1]["qom-path"], "/machine/unattached/device[2]");
}

#[test]
fn inject_nmi_reaches_the_guest() {
    let vmm = Vmm::scenario("nmi", &[]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    vmm.wait_for_serial("kvmon-test: start");
    assert_eq!(client.command(r#"{"execute":"inject-nmi"}"#), OK);
    vmm.wait_for_serial("kvmon-test: nmi n=1 cpu=0");
    assert_eq!(client.command(r#"{"execute":"inject-nmi"}"#), OK);
    vmm.wait_for_serial("kvmon-test: nmi n=2 cpu=0");
}

#[test]
fn sigterm_shuts_the_guest_down() {
    let mut vmm = Vmm::scenario("idle", &[]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    vmm.wait_for_serial("kvmon-test: start");
    vmm.signal(libc::SIGTERM);
    assert_eq!(event(&mut client), shutdown(false, "host-signal"));
    exits_with(&mut vmm, 0);
    assert!(
        vmm.stderr().contains("terminating on signal 15"),
        "{}",
        vmm.stderr()
    );
}

#[test]
fn a_kvm_emulation_failure_stops_the_vm_in_internal_error() {
    let mut vmm = Vmm::scenario("mmio-exec", &[]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    assert_eq!(event(&mut client), named("STOP"));
    assert_eq!(
        query_status(&mut client),
        r#"{"return": {"status": "internal-error", "running": false}}"#
    );
    assert!(
        vmm.stderr().contains(
            "KVM internal error on vCPU 0. Suberror: 1 (emulation failure); RIP=0xd0000000"
        ),
        "{}",
        vmm.stderr()
    );
    reset_and_start_again(&mut client);
    // The guest runs again, into the same wall.
    assert_eq!(event(&mut client), named("STOP"));
    assert_eq!(vmm.serial().matches("kvmon-test: start").count(), 2);
    assert_eq!(client.command(r#"{"execute":"quit"}"#), OK);
    exits_with(&mut vmm, 0);
}

#[test]
fn a_guest_that_asks_twice_for_a_reset_is_reset_once() {
    let vmm = Vmm::scenario("reset-twice", &[]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    assert_eq!(event(&mut client), reset(true, "guest-reset"));
    vmm.wait_for_serial("kvmon-test: rebooted via=reset-twice");
    // The second request came before the reset: it must not reset again.
    assert_eq!(client.try_line(Duration::from_millis(500)), None);
    assert_eq!(vmm.serial().matches("kvmon-test: start").count(), 2);
}

#[test]
fn an_nmi_the_local_apic_does_not_accept_is_dropped() {
    // In prelaunch LINT1 is masked, as after any reset: QEMU drops the NMI.
    let vmm = Vmm::scenario("nmi", &[]);
    let mut client = vmm.negotiated();
    assert_eq!(client.command(r#"{"execute":"inject-nmi"}"#), OK);
    cont(&mut client);
    vmm.wait_for_serial("kvmon-test: start");
    assert_eq!(
        client.try_line(Duration::from_millis(300)),
        None,
        "no RESET"
    );
    assert!(
        !vmm.serial().contains("kvmon-test: nmi"),
        "{}",
        vmm.serial()
    );
    // The guest has unmasked LINT1 itself, as an OS does: now it takes one.
    assert_eq!(client.command(r#"{"execute":"inject-nmi"}"#), OK);
    vmm.wait_for_serial("kvmon-test: nmi n=1 cpu=0");
}

#[test]
fn string_port_output_reaches_the_device_byte_by_byte() {
    let vmm = Vmm::scenario("rep-outsb", &[]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    vmm.wait_for_serial("kvmon-test: written by rep outsb\r\n");
}
