//! The same guest, driven the same way, on kvmon and on QEMU's microvm
//! (both on this host's KVM, booting the same firmware ELF): the replies,
//! the events and their data, in the same order.

// In tests a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use kvmon_tests::{default_firmware, normalize, Client, Vmm};

enum Step {
    /// A command: the events before its reply, then the reply.
    Run(&'static str),
    /// The events up to and including this one.
    Await(&'static str),
    /// Until the guest prints this (again, if it did before).
    Serial(&'static str),
}

use Step::*;

fn transcript(vmm: &Vmm, steps: &[Step]) -> Vec<String> {
    let mut client = vmm.negotiated();
    let mut lines = Vec::new();
    let mut printed = std::collections::HashMap::new();
    for step in steps {
        match step {
            Run(command) => {
                let reply = client.command(&format!(r#"{{"execute":{command}}}"#));
                lines.append(&mut client.events);
                lines.push(reply);
            }
            Await(name) => loop {
                let event = client.event();
                let found = event.contains(&format!(r#""event": "{name}""#));
                lines.push(event);
                if found {
                    break;
                }
            },
            Serial(text) => {
                let seen = printed.entry(*text).or_insert(0);
                *seen += 1;
                vmm.wait_for_output("serial", text, *seen);
            }
        }
    }
    lines.iter().map(|line| normalize(line, &[])).collect()
}

/// Runs `steps` on both VMMs; the guest is the test guest's `scenario`,
/// or with `None` the default firmware.
fn same_as_qemu(scenario: Option<&str>, extra: &[&str], steps: &[Step]) {
    let firmware = default_firmware();
    let (kvmon, qemu) = match scenario {
        Some(scenario) => (
            Vmm::scenario(scenario, extra),
            Vmm::qemu_scenario(scenario, extra),
        ),
        None => {
            let mut args = vec!["-S", "-kernel", firmware.to_str().unwrap()];
            args.extend_from_slice(extra);
            (Vmm::guest(&args), Vmm::qemu_scenario_with(&args))
        }
    };
    let started = Instant::now();
    let expected = transcript(&qemu, steps);
    let got = transcript(&kvmon, steps);
    assert_eq!(
        got,
        expected,
        "kvmon differs from QEMU ({:?})",
        started.elapsed()
    );
}

#[test]
fn guest_poweroff_with_no_shutdown() {
    same_as_qemu(
        Some("poweroff"),
        &["-no-shutdown"],
        &[
            Run(r#""query-status""#),
            Run(r#""cont""#),
            Await("STOP"),
            Run(r#""query-status""#),
            Run(r#""cont""#),
            Run(r#""system_reset""#),
            Run(r#""query-status""#),
            Run(r#""cont""#),
            Await("STOP"),
            Run(r#""query-status""#),
            Run(r#""quit""#),
        ],
    );
}

#[test]
fn guest_reset_with_and_without_no_reboot() {
    let steps = [
        Run(r#""cont""#),
        Await("RESET"),
        Serial("kvmon-test: rebooted"),
        Run(r#""query-status""#),
        Run(r#""quit""#),
    ];
    same_as_qemu(Some("acpi-reset"), &[], &steps);
    same_as_qemu(Some("triple-fault"), &[], &steps);
    same_as_qemu(
        Some("acpi-reset"),
        &["-no-reboot"],
        &[Run(r#""cont""#), Await("SHUTDOWN")],
    );
}

#[test]
fn power_button_stop_cont_and_reset() {
    same_as_qemu(
        None,
        &[],
        &[
            Run(r#""cont""#),
            Serial("Idle; press the power button"),
            Run(r#""stop""#),
            Run(r#""query-status""#),
            Run(r#""stop""#),
            Run(r#""cont""#),
            Run(r#""cont""#),
            Run(r#""set-action","arguments":{"reboot":"shutdown","shutdown":"pause"}"#),
            Run(r#""system_reset""#),
            Run(r#""query-status""#),
            Run(r#""set-action","arguments":{"reboot":"reset"}"#),
            Run(r#""system_reset""#),
            Run(r#""query-status""#),
            Run(r#""cont""#),
            Serial("Idle; press the power button"),
            Run(r#""inject-nmi""#),
            Run(r#""system_powerdown""#),
            Await("SHUTDOWN"),
            Await("STOP"),
            Run(r#""query-status""#),
        ],
    );
}

#[test]
fn an_nmi_before_the_guest_takes_nmis() {
    same_as_qemu(
        Some("nmi"),
        &[],
        &[
            Run(r#""inject-nmi""#),
            Run(r#""cont""#),
            Serial("kvmon-test: start"),
            Run(r#""inject-nmi""#),
            Serial("kvmon-test: nmi n=1"),
            Run(r#""query-status""#),
            Run(r#""quit""#),
        ],
    );
}

#[test]
fn signals_end_both_alike() {
    let (kvmon, qemu) = (Vmm::scenario("idle", &[]), Vmm::qemu_scenario("idle", &[]));
    let mut outcomes = Vec::new();
    for mut vmm in [qemu, kvmon] {
        let mut client: Client = vmm.negotiated();
        vmm.signal(libc::SIGTERM);
        let event = normalize(&client.event(), &[]);
        let status = vmm.wait(Duration::from_secs(20)).code();
        outcomes.push((event, status));
    }
    assert_eq!(outcomes[0], outcomes[1]);
}
