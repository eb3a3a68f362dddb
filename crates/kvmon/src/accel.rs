//! Choosing the accelerator as QEMU does: each candidate in turn until one
//! initialises, with QEMU's messages for those that do not.

use std::fs::File;

/// Tries `candidates` in order; returns whether KVM is in use, or `None`
/// when none could be used.  `say` prints a line after `PROG: `.
pub fn choose(
    candidates: &[(String, Option<String>)],
    say: &mut dyn FnMut(String),
) -> Option<bool> {
    let mut failed = false;
    for (name, location) in candidates {
        let prefix = location
            .as_ref()
            .map(|l| format!("{l}: "))
            .unwrap_or_default();
        let kvm = match name.as_str() {
            "kvm" => match File::options().read(true).write(true).open("/dev/kvm") {
                Ok(_) => true,
                Err(error) => {
                    let error = monitor::os_error(&error);
                    say(format!(
                        "{prefix}Could not access KVM kernel module: {error}"
                    ));
                    say(format!("{prefix}failed to initialize kvm: {error}"));
                    failed = true;
                    continue;
                }
            },
            "tcg" => false,
            other => {
                say(format!("invalid accelerator {other}"));
                failed = true;
                continue;
            }
        };
        if failed {
            say(format!("falling back to {name}"));
        }
        return Some(kvm);
    }
    if !failed {
        say("no accelerator found".to_string());
    }
    None
}
