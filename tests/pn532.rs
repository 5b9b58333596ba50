//! The real binary with the simulated loops and outputs and a PN532 on a
//! serial port: the emulator on a pseudo-terminal (`backend = "sim"`,
//! `reader = "uart"`), as a technician tries a reader on a laptop.

mod common;

use common::{Gate, WAIT, cards, kinds, long_wait, stdout};
use parkgate_hal::pn532::emulator::Emulator;
use parkgate_hal::{BarrierCommand, Credential, Light, Sensor, SensorState};

// Two workers: the emulator is a task on this runtime and must keep
// answering while the test blocks on a CLI process (under qemu-user a CLI
// run takes a second, ten times the PN532's ACK deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_on_the_pn532_is_decided_and_an_unplugged_reader_comes_back() {
    let emu_dir = tempfile::tempdir().unwrap();
    let mut emulator = Emulator::start(emu_dir.path()).unwrap();
    let device = emulator.path().display().to_string();
    assert!(!device.contains(['"', '\\']), "a temp path TOML can't hold");
    // demo.toml has no reader keys: they go after `demo_data`'s line.
    let reader = format!("true\nreader = \"uart\"\nreader_device = \"{device}\"");
    let mut gate = Gate::start(&[("demo_data", &reader)]).await;

    let status = gate
        .wait_status(WAIT, "read the PN532's firmware", |s| {
            s.reader_firmware.is_some()
        })
        .await;
    assert_eq!(status.reader_firmware.as_deref(), Some("PN532 v1.6"));
    // Asked again until the reader reads as online: under qemu-user a poll
    // can still miss its deadline and the reader flap offline for a moment.
    let deadline = tokio::time::Instant::now() + long_wait();
    loop {
        let out = gate.cli(&["status"]);
        if stdout(&out).contains("reader    ok (PN532 v1.6)") {
            break;
        }
        assert!(
            stdout(&out).contains("reader    offline (PN532 v1.6)")
                && tokio::time::Instant::now() < deadline,
            "{out:?}"
        );
        tokio::task::yield_now().await;
    }
    let out = gate.cli(&["status", "--json"]);
    assert!(
        stdout(&out).contains(r#""reader_firmware":"PN532 v1.6""#),
        "{out:?}"
    );

    // Alice drives up and holds her card on the reader.
    gate.sensor(Sensor::Arming, SensorState::Occupied).await;
    emulator.put_card(&Credential::from_hex(cards::ALICE).unwrap().uid);
    gate.expect_barrier(BarrierCommand::Up).await;
    assert_eq!(
        gate.expect_signal(Light::Green).await,
        "Welcome Alice Tran - spot B1-042"
    );
    let polls = emulator.polls();
    tokio::time::timeout(WAIT, emulator.wait_polls(polls + 5))
        .await
        .expect("the reader keeps polling");
    emulator.remove_card();
    gate.drive_through(1).await;
    gate.settle().await;
    let check_ins: Vec<_> = gate
        .events()
        .into_iter()
        .filter(|e| e["type"] == "check_in")
        .collect();
    assert_eq!(check_ins.len(), 1, "{check_ins:#?}");
    assert_eq!(check_ins[0]["card"], cards::ALICE);

    // The USB adapter is pulled out and put back.
    emulator.unplug().unwrap();
    gate.wait_status(WAIT, "noticed the reader gone", |s| !s.reader_online)
        .await;
    emulator.plug().unwrap();
    gate.wait_status(WAIT, "noticed the reader back", |s| s.reader_online)
        .await;
    let alerts: Vec<String> = kinds(&gate.events())
        .into_iter()
        .filter(|k| k.contains("reader"))
        .collect();
    // One offline and one online per time the reader went away: here once,
    // or (on a machine slow enough that a poll misses its deadline, like
    // qemu-user in CI) more, alternating. The reader may have flapped again
    // since the status above, so the last offline may await its online.
    assert!(
        alerts.len() >= 2 && alerts[1] == "alert:reader_online",
        "{alerts:?}"
    );
    for (i, alert) in alerts.iter().enumerate() {
        let expected = ["alert:reader_offline", "alert:reader_online"][i % 2];
        assert_eq!(alert, expected, "{alerts:?}");
    }
    let offline = gate.alerts("reader_offline");
    let message = offline[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("ttyPN532"), "{message}");

    let status = gate.terminate().await;
    assert!(status.success(), "{status:?}");
}
