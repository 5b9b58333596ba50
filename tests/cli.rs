//! The technician's commands, run as a technician would: `--help`,
//! `check-config`, `replica apply`, `availability`, `status`, `sim`, `demo`.

mod common;

use std::path::Path;

use common::{Gate, IDLE_TEXT, cards, cli, config_text, stdout};
use parkgate_hal::{BarrierCommand, Light};
use serde_json::{Value, json};

/// Free spots of `class` in `parkgate availability` output (the FREE column).
fn free(text: &str, class: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let mut cols = l.split_whitespace();
            (cols.next() == Some(class)).then(|| cols.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {class} row in\n{text}"))
}

#[test]
fn help_lists_every_subcommand() {
    let out = cli(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    for sub in [
        "run",
        "demo",
        "status",
        "sim",
        "check-config",
        "availability",
        "replica",
        "events",
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(sub)),
            "{sub} missing from\n{text}"
        );
    }
    let run = stdout(&cli(&["run", "--help"]));
    assert!(run.contains("--manual-clock"), "{run}");
    assert!(!cli(&["no-such-command"]).status.success());
}

#[test]
fn check_config_points_at_each_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    let path = file.display().to_string();

    // Broken syntax-level: an unknown key and a value out of its set.
    let text = config_text(dir.path(), &[("role", "\"sideways\"")]).replace(
        "close_delay_ms = 500",
        "close_delay_ms = 500\nclose_dealy_ms = 500",
    );
    std::fs::write(&file, &text).unwrap();
    let out = cli(&["check-config", &path]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let line_of = |needle: &str| 1 + text.lines().position(|l| l.starts_with(needle)).unwrap();
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("{path}:{}:8: ", line_of("role ="))),
        "{lines:?}"
    );
    assert!(lines[0].contains("sideways"), "{lines:?}");
    assert!(
        lines[1].starts_with(&format!("{path}:{}:1: ", line_of("close_dealy_ms"))),
        "{lines:?}"
    );
    assert!(lines[1].contains("close_dealy_ms"), "{lines:?}");

    // Well-formed but wrong values.
    let text = config_text(dir.path(), &[("site", "\"B1!\""), ("pass_timeout_s", "0")]);
    std::fs::write(&file, &text).unwrap();
    let out = cli(&["check-config", &path]);
    assert!(!out.status.success(), "{out:?}");
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("{path}:{}:1: ", line_of("site ="))),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!("{path}:{}:1: ", line_of("pass_timeout_s ="))),
        "{lines:?}"
    );

    let missing = dir.path().join("missing.toml");
    assert!(
        !cli(&["check-config", &missing.display().to_string()])
            .status
            .success()
    );
}

#[test]
fn check_config_summarises_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gate.toml");
    std::fs::write(&file, config_text(dir.path(), &[("role", "\"exit\"")])).unwrap();
    let path = file.display().to_string();

    let out = cli(&["check-config", &path]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.starts_with(&format!("{path}: ok\n")), "{text}");
    assert!(
        text.contains("Gate b1/main/entry-1: exit lane: lets vehicles out"),
        "{text}"
    );
    assert!(text.contains("Capacity: 35 spots"), "{text}");
    assert!(text.contains("Anti-passback: soft"), "{text}");
}

/// A change batch in the contract's JSON: one person with a reservation
/// for a standard spot on 10 January 2030, 09:00-17:00.
fn batch(seq: u64, who: &str) -> Value {
    let upsert = |kind: &str, data: Value| json!({"op": "upsert", "kind": kind, "data": data});
    json!({
        "v": 1,
        "seq": seq,
        "at": "2029-12-01T10:00:00+07:00",
        "ops": [
            upsert("user", json!({"user_id": who, "name": "Erin Vo", "status": "active"})),
            upsert("card", json!({"card": "04E1E1E1E1E1E1", "user_id": who, "status": "active"})),
            upsert("vehicle", json!({
                "vehicle_id": format!("v-{who}"), "user_id": who, "class": "standard"
            })),
            upsert("plan", json!({
                "user_id": who, "kind": "monthly", "lots": ["main"], "status": "paid"
            })),
            upsert("reservation", json!({
                "reservation_id": format!("r-{who}"), "user_id": who,
                "vehicle_id": format!("v-{who}"), "lot": "main", "class": "standard",
                "start": "2030-01-10T09:00:00+07:00", "end": "2030-01-10T17:00:00+07:00",
                "status": "booked"
            })),
        ]
    })
}

#[test]
fn replica_apply_applies_skips_a_duplicate_and_refuses_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gate.toml");
    std::fs::write(&config, config_text(dir.path(), &[])).unwrap();
    let config = config.display().to_string();
    let write = |name: &str, v: &Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, v.to_string()).unwrap();
        path.display().to_string()
    };
    let one = write("1.json", &batch(1, "u-erin"));
    let three = write("3.json", &batch(3, "u-finn"));
    let availability = || {
        let out = cli(&[
            "availability",
            "--config",
            &config,
            "--at",
            "2030-01-10T10:00:00+07:00",
        ]);
        assert!(out.status.success(), "{out:?}");
        stdout(&out)
    };
    assert_eq!(free(&availability(), "standard"), 20);

    let out = cli(&["replica", "apply", "--config", &config, &one]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out).trim(), "applied batch 1 (5 ops)");
    let after = availability();
    assert_eq!(
        free(&after, "standard"),
        19,
        "Erin's reservation holds a spot"
    );
    assert_eq!(free(&after, "compact"), 5);

    let out = cli(&["replica", "apply", "--config", &config, &one]);
    assert!(out.status.success(), "a duplicate is harmless: {out:?}");
    assert!(stdout(&out).contains("already applied"), "{out:?}");

    let out = cli(&["replica", "apply", "--config", &config, &three]);
    assert!(!out.status.success(), "a gap fails: {out:?}");
    assert_eq!(
        stdout(&out).trim(),
        "gap: the replica is at seq 1, batch 3 needs 2; nothing applied"
    );
    assert_eq!(
        free(&availability(), "standard"),
        19,
        "Finn's batch not applied"
    );

    let junk = write("junk.json", &json!({"v": 1, "seq": 2}));
    assert!(
        !cli(&["replica", "apply", "--config", &config, &junk])
            .status
            .success()
    );
}

fn sim(config: &Path, args: &[&str]) -> Value {
    let config = config.display().to_string();
    let mut all = vec!["sim", "--config", &config];
    all.extend(args);
    let out = cli(&all);
    assert!(out.status.success(), "parkgate sim {args:?}: {out:?}");
    serde_json::from_str(stdout(&out).trim()).unwrap()
}

#[tokio::test]
async fn status_availability_and_sim_on_a_running_gate() {
    let mut gate = Gate::start(&[]).await;

    assert_eq!(
        sim(&gate.config, &["vehicle", "arming", "occupied"]),
        json!({"ok": true, "changed": true})
    );
    sim(&gate.config, &["tap", cards::BOB]);
    gate.expect_barrier(BarrierCommand::Up).await;
    assert_eq!(gate.expect_signal(Light::Green).await, "Welcome Bob Nguyen");
    gate.settle().await;

    let out = gate.cli(&["status"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let expected = [
        "gate      b1/main/entry-1 at 2026-11-23T07:58:00+07:00",
        "clock     kernel synchronised",
        "lane      open (barrier up)",
        "reader    ok",
        "inside    compact 1",
        "entered   compact 1",
        "exited    none",
        "outbox    1 event(s) waiting for HQ, the oldest for 0s",
        "hq link   off ([mqtt] enabled = false): events wait in the outbox",
        "replica   seq 1",
    ];
    assert_eq!(text.lines().collect::<Vec<_>>(), expected);

    gate.drive_through(1).await;
    let reply = sim(&gate.config, &["advance", "60000"]);
    assert_eq!(reply["now"], "2026-11-23T07:59:00.501+07:00");
    let out = gate.cli(&["status", "--json"]);
    let status: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(status["at"], reply["now"]);
    assert_eq!(status["occupancy"], json!({"compact": 1}));

    let out = gate.cli(&["availability", "--at", "2026-11-23T08:00:00+07:00"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.starts_with("Free spots at 2026-11-23 08:00:00\n"),
        "{text}"
    );
    assert_eq!(free(&text, "compact"), 4, "Bob is inside");
    assert_eq!(free(&text, "motorcycle"), 10);

    let state = sim(&gate.config, &["state"]);
    assert_eq!(state["state"]["barrier"], "down");
    assert_eq!(
        state["state"]["signal"],
        json!({"light": "red", "buzzer": "none", "text": IDLE_TEXT}),
        "no green over a lowered barrier: the lamps are back to idle"
    );
}

#[tokio::test]
async fn every_sim_request_is_a_sim_subcommand() {
    let mut gate = Gate::start(&[]).await;
    let config = gate.config.clone();

    sim(&config, &["tap-corrupt"]);
    assert_eq!(
        gate.expect_signal(Light::Red).await,
        "Please tap your card again"
    );
    sim(&config, &["vehicle", "arming", "occupied"]);
    sim(&config, &["tap-auth-failed", cards::BOB]);
    assert_eq!(
        gate.expect_signal(Light::Red).await,
        "Card not valid - call security"
    );

    let offline = ["reader", "offline", "--reason", "no answer on /dev/ttyAMA0"];
    assert_eq!(sim(&config, &offline), json!({"ok": true, "changed": true}));
    let out = gate.cli(&["sim", "tap", cards::BOB]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the reader is offline"),
        "{out:?}"
    );
    assert_eq!(
        sim(&config, &["reader", "online"]),
        json!({"ok": true, "changed": true})
    );
    gate.settle().await;
    let offline: Vec<Value> = gate
        .alerts("reader_offline")
        .into_iter()
        .map(|a| a["message"].clone())
        .collect();
    assert_eq!(
        offline,
        [json!(
            "The card reader went offline: no answer on /dev/ttyAMA0."
        )]
    );
    assert_eq!(gate.alerts("reader_online").len(), 1);

    assert_eq!(
        sim(&config, &["barrier-follows", "false"]),
        json!({"ok": true})
    );
    let state = sim(&config, &["state"]);
    assert_eq!(state["state"]["barrier_follows"], false);
    assert_eq!(state["state"]["reader_online"], true);
}

#[test]
fn sim_arguments_are_checked_before_anything_is_sent() {
    let help = stdout(&cli(&["sim", "--help"]));
    for sub in [
        "vehicle",
        "tap",
        "tap-auth-failed",
        "tap-corrupt",
        "reader",
        "barrier-follows",
        "state",
        "watch",
        "advance",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{sub} "))),
            "{sub} missing from\n{help}"
        );
    }
    // No config is read (there is none at the default path): a usage error
    // comes from the arguments alone, with clap's exit code.
    for (args, says) in [
        (
            &["sim", "reader", "sideways"][..],
            "[possible values: online, offline]",
        ),
        (
            &["sim", "vehicle", "roof", "clear"],
            "valid: arming, safety, barrier_up",
        ),
        (
            &["sim", "vehicle", "arming", "parked"],
            "valid: clear, occupied, fault",
        ),
        (&["sim", "barrier-follows", "stuck"], "stuck"),
        (&["sim", "tap"], "<CARD>"),
    ] {
        let out = cli(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// `[hardware.sim_start]` reaches the sim `parkgate run` starts: a lane
/// found after a restart with the boom up and a car under it.
#[tokio::test]
async fn the_sim_starts_as_the_config_says() {
    let found = [("safety", "\"occupied\""), ("barrier_up", "\"occupied\"")];
    let gate = Gate::start(&found).await;
    let state = sim(&gate.config, &["state"]);
    assert_eq!(
        state["state"]["sensors"],
        json!({"arming": "clear", "safety": "occupied", "barrier_up": "occupied"})
    );
    assert_eq!(state["state"]["barrier"], "up");
}

#[test]
fn status_without_a_daemon_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gate.toml");
    std::fs::write(&config, config_text(dir.path(), &[])).unwrap();
    let out = cli(&["status", "--config", &config.display().to_string()]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("control.sock"),
        "{out:?}"
    );
}

#[test]
fn demo_plays_a_morning_with_a_tailgater_and_a_fee() {
    let out = cli(&["demo"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let journal = text
        .split_once("The journal (")
        .unwrap_or_else(|| panic!("no journal in\n{text}"))
        .1;
    let line = |kind: &str| {
        journal
            .lines()
            .find(|l| l.contains(kind))
            .unwrap_or_else(|| panic!("no {kind} line in\n{journal}"))
    };
    assert!(line("tailgating").contains("alert"));
    assert!(line("check_out").contains("fee 50,000 VND"));
    assert!(line("card_revoked").contains("denied"));
    assert!(
        text.contains("[GREEN] Goodbye Bob Nguyen - fee 50,000 VND"),
        "{text}"
    );
}

#[test]
fn the_pi_backend_off_a_pi_stops_at_start_saying_why() {
    if Path::new("/dev/gpiomem").exists() {
        return; // a Pi: this would drive real pins
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gate.toml");
    let text = config_text(dir.path(), &[("backend", "\"pi\""), ("demo_data", "false")]);
    std::fs::write(&config, text).unwrap();
    let out = cli(&["run", "--config", &config.display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr.contains("cannot open the Raspberry Pi's GPIO"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.path().join("control.sock").exists());
}

#[cfg(feature = "pn532")]
#[test]
fn a_pn532_on_spi_or_i2c_off_a_pi_stops_at_start_saying_why() {
    // A bus number no machine has for I2C; SPI0 only off a Pi.
    let mut cases = vec![("i2c", "/dev/i2c-250", "dtparam=i2c_arm=on")];
    if !Path::new("/dev/spidev0.0").exists() {
        cases.push(("spi", "/dev/spidev0.0", "dtparam=spi=on"));
    }
    for (bus, device, hint) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("gate.toml");
        let reader = format!("false\nreader = \"{bus}\"\nreader_device = \"{device}\"");
        let text = config_text(dir.path(), &[("demo_data", &reader)]);
        std::fs::write(&config, text).unwrap();
        let out = cli(&["run", "--config", &config.display().to_string()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            stderr.contains(&format!("cannot open the PN532 on {device}")) && stderr.contains(hint),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
