//! virtio-blk through real KVM: kvmon's test guest drives the device with
//! its own virtio-mmio driver, and the tests look at the image file, the
//! QMP events and the run state.

// In tests a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kvmon_tests::{event, named, run_kvmon, Client, TempDir, Vmm};

const OK: &str = r#"{"return": {}}"#;

/// The byte at `offset` of a test image, as the guest expects it.
fn image_pattern(offset: usize) -> u8 {
    (offset as u8).wrapping_mul(7) ^ (offset / 512) as u8
}

/// What the guest writes at `offset`.
fn written_pattern(offset: usize) -> u8 {
    0xa5 ^ (offset as u8) ^ (offset >> 16) as u8
}

/// An 8 MiB image of the pattern.
fn pattern_image(path: &Path) {
    let bytes: Vec<u8> = (0..8 << 20).map(image_pattern).collect();
    std::fs::write(path, bytes).unwrap();
}

fn start(vmm: &Vmm) -> Client {
    let mut client = vmm.negotiated();
    assert_eq!(client.command(r#"{"execute":"cont"}"#), OK);
    assert_eq!(event(&mut client), named("RESUME"));
    client
}

fn exits(vmm: &mut Vmm) {
    let status = vmm.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", vmm.stderr());
}

#[test]
fn the_guest_reads_the_image_and_what_it_writes_and_flushes_is_in_the_file() {
    let images = TempDir::new();
    let image = images.join("disk.img");
    pattern_image(&image);
    let drive = format!(
        "file={},format=raw,if=none,id=disk0,serial=KVMON-1",
        image.display()
    );
    let mut vmm = Vmm::scenario(
        "blk",
        &["-drive", &drive, "-device", "virtio-blk-device,drive=disk0"],
    );
    let _client = start(&vmm);
    // The guest powers off when done; kvmon exits.
    exits(&mut vmm);
    let serial = vmm.serial();
    assert!(
        serial.contains("blk base=0xd0000000 capacity=16384 ro=0"),
        "{serial}"
    );
    assert!(serial.contains("blk read status=0 pattern=ok"), "{serial}");
    assert!(
        serial.contains("blk id status=0 serial=KVMON-1"),
        "{serial}"
    );
    assert!(
        serial.contains("blk write status=0 flush=0 read=0 readback=ok"),
        "{serial}"
    );
    let bytes = std::fs::read(&image).unwrap();
    let written = 16 * 512..24 * 512;
    assert!(written.clone().all(|i| bytes[i] == written_pattern(i)));
    assert!((0..written.start).all(|i| bytes[i] == image_pattern(i)));
    assert!((written.end..bytes.len()).all(|i| bytes[i] == image_pattern(i)));
}

#[test]
fn a_read_only_drive_refuses_the_guests_writes() {
    let images = TempDir::new();
    let image = images.join("disk.img");
    pattern_image(&image);
    let drive = format!("file={},format=raw,if=virtio,readonly=on", image.display());
    let mut vmm = Vmm::scenario("blk", &["-drive", &drive]);
    let mut client = start(&vmm);
    // The guest powers off when done; kvmon exits.
    exits(&mut vmm);
    let serial = vmm.serial();
    assert!(serial.contains("ro=1"), "{serial}");
    assert!(serial.contains("blk read status=0 pattern=ok"), "{serial}");
    assert!(
        serial.contains("blk write status=1 flush=0 read=0 readback=ok"),
        "the write fails, and the disk still holds the image: {serial}"
    );
    let error = without_node_numbers(&event(&mut client));
    assert!(
        error.contains(r##""event": "BLOCK_IO_ERROR", "data": {"device": "virtio0", "nospace": false, "node-name": "#block", "qom-path": "/machine/peripheral-anon/device[0]", "reason": "Operation not permitted", "operation": "write", "action": "report"}"##),
        "{error}"
    );
    let bytes = std::fs::read(&image).unwrap();
    assert!((0..bytes.len()).all(|i| bytes[i] == image_pattern(i)));
}

/// A tmpfs of `size`, mounted for the test and gone with it.
struct SmallDisk {
    dir: TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = TempDir::new();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.join(""))
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs needs root");
        SmallDisk { dir }
    }

    fn join(&self, name: &str) -> std::path::PathBuf {
        self.dir.join(name)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.join("")).status();
    }
}

#[test]
fn a_full_disk_stops_the_vm_and_cont_completes_the_write_once_there_is_room() {
    let disk = SmallDisk::mount("512k");
    let image = disk.join("disk.img");
    // Sparse: the guest's writes need room the tmpfs does not have while
    // the filler takes most of it.
    std::fs::File::create(&image)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let filler = disk.join("filler");
    std::fs::write(&filler, vec![1u8; 384 << 10]).unwrap();

    let drive = format!(
        "file={},format=raw,if=none,id=disk0,werror=stop",
        image.display()
    );
    let mut vmm = Vmm::scenario(
        "blk-fill",
        &["-drive", &drive, "-device", "virtio-blk-device,drive=disk0"],
    );
    let mut client = start(&vmm);
    let error = without_node_numbers(&event(&mut client));
    assert!(
        error.contains(r##""event": "BLOCK_IO_ERROR", "data": {"device": "disk0", "nospace": true, "node-name": "#block", "qom-path": "/machine/peripheral-anon/device[0]", "reason": "No space left on device", "operation": "write", "action": "stop"}"##),
        "{error}"
    );
    assert_eq!(event(&mut client), named("STOP"));
    assert_eq!(
        client.command(r#"{"execute":"query-status"}"#),
        r#"{"return": {"status": "io-error", "running": false}}"#
    );
    let query_block = r#"{"execute":"query-block"}"#;
    let blocks = client.command(query_block);
    assert!(blocks.contains(r#""io-status": "nospace""#), "{blocks}");
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(client.command(r#"{"execute":"cont"}"#), OK);
    assert_eq!(event(&mut client), named("RESUME"));
    let blocks = client.command(query_block);
    assert!(
        blocks.contains(r#""io-status": "ok""#),
        "cont resets it: {blocks}"
    );
    // The guest powers off when done; kvmon exits.
    exits(&mut vmm);
    let serial = vmm.serial();
    assert!(
        serial.contains("blk filled failed=0 flush=0 read=0 readback=ok"),
        "no request failed: the stopped one was retried: {serial}"
    );
    let bytes = std::fs::read(&image).unwrap();
    let written = 2048 * 512..2048 * 512 + (256 << 10);
    assert!(written.clone().all(|i| bytes[i] == written_pattern(i)));
    assert!(bytes[..written.start].iter().all(|&b| b == 0));
}

#[test]
fn a_second_vm_cannot_write_an_image_in_use() {
    let images = TempDir::new();
    let image = images.join("disk.img");
    pattern_image(&image);
    let drive = format!("file={},format=raw,if=virtio", image.display());
    let vmm = Vmm::scenario("idle", &["-drive", &drive]);
    // A machine command waits for the machine, and so for its drive.
    let mut client = vmm.negotiated();
    client.command(r#"{"execute":"query-status"}"#);
    for (readonly, refusal) in [
        ("off", r#"Failed to get "write" lock"#),
        ("on", r#"Failed to get shared "write" lock"#),
    ] {
        let second = format!("{drive},readonly={readonly}");
        let guest = kvmon_tests::test_guest();
        let (code, _, stderr) = run_kvmon(&["-kernel", guest.to_str().unwrap(), "-drive", &second]);
        assert_eq!(code, Some(1), "{stderr}");
        assert_eq!(
            stderr,
            format!(
                "kvmon: -drive {second}: {refusal}: is another process using the image [{}]?\n",
                image.display()
            )
        );
    }
}

#[test]
fn bad_disk_options_name_the_problem() {
    let images = TempDir::new();
    let image = images.join("disk.img");
    std::fs::write(&image, [0u8; 4096]).unwrap();
    let file = format!("file={}", image.display());
    let missing = images.join("missing.img");
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec![
                "-drive".into(),
                format!("{file},if=none,id=d0,werror=bogus"),
            ],
            "'bogus' invalid write error action".into(),
        ),
        (
            vec!["-drive".into(), format!("{file},if=virtio,rerror=enospc")],
            "'enospc' invalid read error action".into(),
        ),
        (
            vec!["-drive".into(), format!("{file},if=virtio,cache=bogus")],
            "invalid cache option".into(),
        ),
        (
            vec!["-drive".into(), format!("{file},if=virtio,format=qcow2")],
            "kvmon reads raw images only, not format 'qcow2'".into(),
        ),
        (
            vec![
                "-drive".into(),
                format!("file={},if=virtio", missing.display()),
            ],
            format!(
                "Could not open '{}': No such file or directory",
                missing.display()
            ),
        ),
        (
            vec![
                "-blockdev".into(),
                format!("filename={},file", image.display()),
            ],
            "Expected '=' after parameter 'file'".into(),
        ),
        (
            vec!["-device".into(), "virtio-blk-device".into()],
            "drive property not set".into(),
        ),
        (
            vec!["-device".into(), "virtio-blk-device,drive=nosuch".into()],
            "Property 'virtio-blk-device.drive' can't find value 'nosuch'".into(),
        ),
        (
            vec![
                "-drive".into(),
                format!("{file},if=none,id=d0"),
                "-device".into(),
                "virtio-blk-device,drive=d0".into(),
                "-device".into(),
                "virtio-blk-device,drive=d0".into(),
            ],
            "Drive 'd0' is already in use by another device".into(),
        ),
    ];
    for (args, message) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, stderr) = run_kvmon(&args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("kvmon: -") && stderr.ends_with(&format!(": {message}\n")),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

/// QEMU's automatic node names end in random digits: `#block` stays.
fn without_node_numbers(reply: &str) -> String {
    let mut out = String::new();
    let mut rest = reply;
    while let Some(at) = rest.find("#block") {
        out.push_str(&rest[..at + 6]);
        rest = rest[at + 6..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// kvmon and QEMU's microvm with the same disk options, held in prelaunch,
/// answer `commands` alike.  One after the other: the images are locked.
fn same_answers_as_qemu(disk_args: &[&str], commands: &[&str]) {
    let guest = kvmon_tests::test_guest();
    let mut args = vec!["-S", "-kernel", guest.to_str().unwrap()];
    args.extend_from_slice(disk_args);
    let answers = |vmm: Vmm| -> Vec<String> {
        let mut client = vmm.negotiated();
        commands
            .iter()
            .map(|command| without_node_numbers(&client.command(command)))
            .collect()
    };
    let ours = answers(Vmm::guest(&args));
    let mut qemu_args = vec!["-global", "virtio-mmio.force-legacy=false"];
    qemu_args.extend_from_slice(&args);
    let theirs = answers(Vmm::qemu_scenario_with(&qemu_args));
    for ((command, ours), theirs) in commands.iter().zip(ours).zip(theirs) {
        assert_eq!(ours, theirs, "{command} with {disk_args:?}");
    }
}

const QUERIES: &[&str] = &[
    r#"{"execute":"query-block"}"#,
    r#"{"execute":"query-blockstats"}"#,
    r#"{"execute":"query-blockstats","arguments":{"query-nodes":true}}"#,
];

#[test]
fn query_block_and_query_blockstats_answer_as_qemu_does() {
    let images = TempDir::new();
    let image = images.join("disk.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let file = image.display().to_string();
    for (drive, device) in [
        (
            format!("file={file},format=raw,if=none,id=disk0"),
            "virtio-blk-device,drive=disk0",
        ),
        (
            format!("file={file},format=raw,if=none,id=disk0,readonly=on,cache=writethrough"),
            "virtio-blk-device,drive=disk0,id=vd0",
        ),
        (
            format!("file={file},format=raw,if=none,id=disk0,cache=none,node-name=n0"),
            "virtio-blk-device,drive=disk0",
        ),
        (
            format!("file={file},format=raw,if=none,id=disk0,cache=unsafe"),
            "virtio-blk-device,drive=disk0",
        ),
    ] {
        same_answers_as_qemu(&["-drive", &drive, "-device", device], QUERIES);
    }
    // Not whole sectors long: the disk ends in a whole one.
    let odd = images.join("odd.img");
    std::fs::File::create(&odd)
        .unwrap()
        .set_len((64 << 20) + 100)
        .unwrap();
    let odd_drive = format!("file={},format=raw,if=none,id=disk0", odd.display());
    same_answers_as_qemu(
        &[
            "-drive",
            &odd_drive,
            "-device",
            "virtio-blk-device,drive=disk0",
        ],
        QUERIES,
    );
    // `driver=` left out of the first, as QEMU allows.
    let blockdev_file = format!("file,filename={file},node-name=f0");
    same_answers_as_qemu(
        &[
            "-blockdev",
            &blockdev_file,
            "-blockdev",
            "driver=raw,file=f0,node-name=r0",
            "-device",
            "virtio-blk-device,drive=r0,id=vd0",
        ],
        QUERIES,
    );
}

#[test]
fn block_resize_answers_as_qemu_does_and_resizes_the_image() {
    let images = TempDir::new();
    for name in ["rw.img", "ro.img"] {
        std::fs::File::create(images.join(name))
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
    }
    let rw = format!(
        "file={},format=raw,if=none,id=disk0",
        images.join("rw.img").display()
    );
    let ro = format!(
        "file={},format=raw,if=none,id=disk1,readonly=on,node-name=ro0",
        images.join("ro.img").display()
    );
    let args = [
        "-drive",
        &rw,
        "-device",
        "virtio-blk-device,drive=disk0",
        "-drive",
        &ro,
        "-device",
        "virtio-blk-device,drive=disk1",
    ];
    same_answers_as_qemu(
        &args,
        &[
            r#"{"execute":"block_resize","arguments":{"device":"nosuch","size":1048576}}"#,
            r#"{"execute":"block_resize","arguments":{"node-name":"nosuch","size":1048576}}"#,
            r#"{"execute":"block_resize","arguments":{"size":1048576}}"#,
            r#"{"execute":"block_resize","arguments":{"device":"disk0","size":-1}}"#,
            r#"{"execute":"block_resize","arguments":{"device":"disk1","size":1048576}}"#,
            r#"{"execute":"block_resize","arguments":{"node-name":"ro0","size":1048576}}"#,
            r#"{"execute":"block_resize","arguments":{"device":"disk0"}}"#,
        ],
    );
    // Both grow the same image the same way (one after the other: the
    // image is locked).
    for vmm in ["kvmon", "qemu"] {
        let guest = kvmon_tests::test_guest();
        let mut all = vec!["-S", "-kernel", guest.to_str().unwrap()];
        all.extend_from_slice(&args[..4]);
        let process = match vmm {
            "kvmon" => Vmm::guest(&all),
            _ => Vmm::qemu_scenario_with(&all),
        };
        let mut client = process.negotiated();
        let size = 100_000_001;
        assert_eq!(
            client.command(&format!(
                r#"{{"execute":"block_resize","arguments":{{"device":"disk0","size":{size}}}}}"#
            )),
            OK,
            "{vmm}"
        );
        let file_size = std::fs::metadata(images.join("rw.img")).unwrap().len();
        assert_eq!(file_size, size, "{vmm}");
        let block = client.command(r#"{"execute":"query-block"}"#);
        assert!(
            block.contains(r#""virtual-size": 100000256"#),
            "{vmm}: {block}"
        );
        drop(client);
        drop(process);
        std::fs::File::options()
            .write(true)
            .open(images.join("rw.img"))
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
    }
}

/// query-blockstats without what depends on timing.
fn counters(reply: &str) -> serde_json::Value {
    fn untimed(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(members) => {
                members.retain(|key, _| !key.ends_with("time_ns"));
                members.values_mut().for_each(untimed);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(untimed),
            _ => {}
        }
    }
    let mut value: serde_json::Value = serde_json::from_str(&without_node_numbers(reply)).unwrap();
    untimed(&mut value);
    value
}

#[test]
fn the_guests_requests_are_accounted_as_qemu_accounts_them() {
    let images = TempDir::new();
    let image = images.join("disk.img");
    pattern_image(&image);
    let drive = format!("file={},format=raw,if=none,id=disk0", image.display());
    let guest = kvmon_tests::test_guest();
    let args = [
        "-S",
        "-no-shutdown",
        "-kernel",
        guest.to_str().unwrap(),
        "-append",
        "blk",
        "-drive",
        &drive,
        "-device",
        "virtio-blk-device,drive=disk0",
    ];
    let mut answers = Vec::new();
    for vmm in ["kvmon", "qemu"] {
        let process = match vmm {
            "kvmon" => Vmm::guest(&args),
            // qboot: QEMU's default firmware would read the disk itself.
            _ => {
                let mut all = vec!["-global", "virtio-mmio.force-legacy=false"];
                all.extend_from_slice(&["-bios", "/usr/share/qemu/qboot.rom"]);
                all.extend_from_slice(&args);
                Vmm::qemu_scenario_with(&all)
            }
        };
        let mut client = start(&process);
        // The guest powers off once done; the VM then waits, shut down.
        while !client
            .command(r#"{"execute":"query-status"}"#)
            .contains(r#""status": "shutdown""#)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(process.serial().contains("readback=ok"), "{vmm}");
        answers.push(counters(
            &client.command(r#"{"execute":"query-blockstats"}"#),
        ));
    }
    assert_eq!(answers[0], answers[1]);
    // The guest's reads, write and flush are all there.
    let stats = &answers[0]["return"][0]["stats"];
    assert_eq!(stats["rd_operations"], 2, "{stats}");
    assert_eq!(stats["wr_bytes"], 4096, "{stats}");
    assert_eq!(stats["flush_operations"], 1, "{stats}");
}
