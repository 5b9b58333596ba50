//! Tests of reading config files: the shipped files, and each problem kind
//! at its exact `line:col`.

use std::path::PathBuf;

use parkgate_hal::SensorState;
use parkgate_hal::sim::SensorStates;

use super::load::schema;
use super::*;
use crate::domain::model::{AntiPassback, Role, VehicleClass};

const EXAMPLE: &str = include_str!("../../config/example.toml");
const DEMO: &str = include_str!("../../config/demo.toml");

/// A minimal good file: 8 lines, so a section appended to it starts on line 9.
const BASE: &str = "[gate]
site = \"b1\"
lot = \"main\"
gate = \"e1\"
role = \"entry\"
timezone = \"UTC\"
[capacity]
standard = 10
";

/// `(line, col, message)` of every diagnostic for `BASE` + `extra`.
fn problems(extra: &str) -> Vec<(usize, usize, String)> {
    match parse(&format!("{BASE}{extra}")) {
        Ok(_) => Vec::new(),
        Err(ds) => ds.into_iter().map(|d| (d.line, d.col, d.message)).collect(),
    }
}

/// The single diagnostic for `BASE` + `extra`, as `(line, col)`, checking
/// its message contains `needle`.
fn one(extra: &str, needle: &str) -> (usize, usize) {
    let ps = problems(extra);
    assert_eq!(ps.len(), 1, "{ps:#?}");
    let (line, col, msg) = &ps[0];
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    (*line, *col)
}

#[test]
fn the_base_file_is_good() {
    let cfg = parse(BASE).unwrap();
    assert_eq!(cfg.capacity.of(VehicleClass::Standard), 10);
    assert_eq!(cfg.lane, LaneTimings::default());
    assert_eq!(cfg.tz(), chrono_tz::UTC);
}

#[test]
fn example_is_valid_and_holds_the_defaults() {
    let cfg = parse(EXAMPLE).unwrap_or_else(|ds| panic!("{ds:#?}"));
    let mut capacity = Capacity {
        total: None,
        compact: 10,
        standard: 100,
        large: 5,
        oversize: 0,
        motorcycle: 40,
        ..Capacity::default()
    };
    capacity.ada.insert(VehicleClass::Standard, 4);
    capacity.ev.insert(VehicleClass::Standard, 6);
    let expected = Config {
        gate: GateId {
            site: "b1".into(),
            lot: "main".into(),
            gate: "entry-1".into(),
            role: Role::Entry,
            timezone: "Asia/Ho_Chi_Minh".into(),
        },
        capacity,
        lane: Default::default(),
        access: Default::default(),
        tariff: Default::default(),
        store: Default::default(),
        mqtt: Default::default(),
        hardware: Default::default(),
        control: Default::default(),
    };
    assert_eq!(cfg, expected);
}

/// Dotted paths of every leaf key in `table`.
fn leaves(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in table {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v.as_table() {
            Some(t) if !t.is_empty() => leaves(t, &path, out),
            _ => out.push(path),
        }
    }
}

#[test]
fn the_idle_light_is_dark_or_red() {
    let cfg = parse(&format!("{BASE}[lane]\nidle_light = \"dark\"\n")).unwrap();
    assert_eq!(cfg.lane.idle_light, crate::domain::lane::IdleLight::Dark);
    assert!(!problems("[lane]\nidle_light = \"blue\"\n").is_empty());
}

#[test]
fn example_documents_every_key() {
    let doc: toml::Table = toml::from_str(EXAMPLE).unwrap();
    let mut in_example = Vec::new();
    leaves(&doc, "", &mut in_example);
    let mut all = Vec::new();
    leaves(&schema(), "", &mut all);
    assert!(all.len() > 40, "schema too small: {all:?}");
    // An optional table is only checked if the schema holds its keys.
    for key in ["arming", "safety", "barrier_up"] {
        let path = format!("hardware.sim_start.{key}");
        assert!(all.contains(&path), "the schema lacks `{path}`");
    }
    for path in all {
        // ada/ev are maps keyed by class; the example shows one class.
        if path.starts_with("capacity.ada.") || path.starts_with("capacity.ev.") {
            continue;
        }
        let key = path.rsplit('.').next().unwrap();
        // An optional key without a default is shown commented out.
        let commented = EXAMPLE
            .lines()
            .any(|l| l.starts_with(&format!("# {key} = ")));
        assert!(
            in_example.contains(&path) || commented,
            "config/example.toml does not document `{path}`"
        );
    }
}

#[test]
fn demo_is_valid_and_simulated() {
    let cfg = parse(DEMO).unwrap_or_else(|ds| panic!("{ds:#?}"));
    assert_eq!(
        (cfg.gate.site.as_str(), cfg.gate.lot.as_str()),
        ("b1", "main")
    );
    assert_eq!(cfg.gate.gate, "entry-1");
    assert_eq!(cfg.gate.role, Role::Both);
    assert_eq!(cfg.tz(), chrono_tz::Asia::Ho_Chi_Minh);
    assert_eq!(cfg.capacity.of(VehicleClass::Standard), 20);
    assert_eq!(cfg.capacity.ada_of(VehicleClass::Standard), 2);
    assert_eq!(cfg.capacity.ev_of(VehicleClass::Standard), 2);
    assert_eq!(cfg.capacity.of(VehicleClass::Motorcycle), 10);
    assert_eq!(cfg.capacity.of(VehicleClass::Large), 0);
    assert_eq!(cfg.store.path, PathBuf::from("demo/gate.db"));
    assert_eq!(cfg.hardware.backend, Backend::Sim);
    assert_eq!(cfg.hardware.sim_socket, PathBuf::from("demo/sim.sock"));
    assert!(cfg.hardware.demo_data);
    assert_eq!(cfg.hardware.sim_start, SensorStates::default());
    assert_eq!(cfg.control.socket, PathBuf::from("demo/control.sock"));
    assert!(!cfg.mqtt.enabled);
    assert_eq!(cfg.tariff.currency, "VND");
}

#[test]
fn every_unknown_key_is_reported_where_it_is() {
    let ps = problems(
        "colour = 1
[lane]
pass_timeout = 30
[tariff]
curency = \"VND\"
[hardware.pins]
grn = 5
[bogus]
x = 1
",
    );
    let at: Vec<(usize, usize)> = ps.iter().map(|p| (p.0, p.1)).collect();
    assert_eq!(
        at,
        vec![(9, 1), (11, 1), (13, 1), (15, 1), (16, 2)],
        "{ps:#?}"
    );
    assert!(
        ps[0].2.contains("unknown key `colour` in [capacity]"),
        "{}",
        ps[0].2
    );
    assert!(
        ps[1].2.contains("did you mean `pass_timeout_s`?"),
        "{}",
        ps[1].2
    );
    assert!(
        ps[2]
            .2
            .contains("unknown key `curency` in [tariff]; did you mean `currency`?")
    );
    assert!(
        ps[3].2.contains("unknown key `grn` in [hardware.pins]"),
        "{}",
        ps[3].2
    );
    assert!(ps[4].2.contains("unknown section [bogus]"), "{}", ps[4].2);
}

#[test]
fn unknown_keys_and_a_type_error_are_reported_together() {
    let ps = problems("[mqtt]\nport = \"x\"\nhots = \"a\"\n");
    let at: Vec<(usize, usize)> = ps.iter().map(|p| (p.0, p.1)).collect();
    assert_eq!(at, vec![(10, 8), (11, 1)], "{ps:#?}");
    assert!(ps[0].2.contains("invalid type"), "{}", ps[0].2);
    assert!(ps[1].2.contains("did you mean `host`?"), "{}", ps[1].2);
}

#[test]
fn unknown_keys_after_a_type_error_are_still_reported() {
    let ps = problems("[lane]\nheld_open_s = \"x\"\n[store]\npaht = \"a\"\n[zzz]\n");
    let at: Vec<(usize, usize)> = ps.iter().map(|p| (p.0, p.1)).collect();
    assert_eq!(at, vec![(10, 15), (12, 1), (13, 2)], "{ps:#?}");
    assert!(ps[1].2.contains("did you mean `path`?"), "{}", ps[1].2);
}

#[test]
fn a_wrong_type_points_at_the_value() {
    assert_eq!(
        one("[lane]\nheld_open_s = \"long\"\n", "invalid type"),
        (10, 15)
    );
    assert_eq!(one("[hardware.pins]\ngreen = 300\n", "u8"), (10, 9));
    assert_eq!(
        one("[access]\nanti_passback = \"maybe\"\n", "hard"),
        (10, 17)
    );
    assert_eq!(one("[capacity.ada]\ntruck = 1\n", "truck"), (10, 1));
}

#[test]
fn a_wrong_type_in_the_tariff_names_its_key() {
    let (line, col) = one(
        "[tariff]\ncurrency = \"VND\"\nday_rate_minor = \"lots\"\n",
        "day_rate_minor",
    );
    assert_eq!((line, col), (11, 18));
}

#[test]
fn a_missing_gate_is_reported() {
    let err = parse("[capacity]\nstandard = 1\n").unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(err[0].message.contains("gate"), "{:?}", err[0]);
}

#[test]
fn a_syntax_error_is_reported_alone() {
    let err = parse("[gate]\nsite = \"b1\"\nlot = = 1\nbogus = 2\n").unwrap_err();
    assert_eq!(err.len(), 1, "{err:#?}");
    assert_eq!(err[0].line, 3);
}

#[test]
fn names_must_be_short_lowercase_words() {
    let text = BASE
        .replace("site = \"b1\"", "site = \"B 1\"")
        .replace("gate = \"e1\"", "gate = \"\"");
    let err = parse(&text).unwrap_err();
    let at: Vec<(usize, usize)> = err.iter().map(|d| (d.line, d.col)).collect();
    assert_eq!(at, vec![(2, 1), (4, 1)]);
    assert!(
        err[0].message.contains("site \"B 1\" is not a valid name"),
        "{}",
        err[0].message
    );
    let long = BASE.replace("lot = \"main\"", &format!("lot = \"{}\"", "a".repeat(33)));
    assert_eq!(parse(&long).unwrap_err()[0].line, 3);
    let ok = BASE.replace("lot = \"main\"", &format!("lot = \"{}\"", "a-9".repeat(10)));
    assert!(parse(&ok).is_ok());
}

#[test]
fn an_unknown_time_zone_is_named_with_a_suggestion() {
    let text = BASE.replace("\"UTC\"", "\"Europe/Berln\"");
    let err = parse(&text).unwrap_err();
    assert_eq!((err[0].line, err[0].col), (6, 1));
    assert!(
        err[0].message.contains("\"Europe/Berln\""),
        "{}",
        err[0].message
    );
    assert!(
        err[0].message.contains("did you mean \"Europe/Berlin\"?"),
        "{}",
        err[0].message
    );
    let far = parse(&BASE.replace("\"UTC\"", "\"Mars/Olympus_Mons_Base\"")).unwrap_err();
    assert!(far[0].message.contains("e.g.") || far[0].message.contains("such as"));
}

#[test]
fn pins_must_be_on_the_header_and_distinct() {
    let (line, col) = one(
        "[hardware.pins]\nred = 41\n",
        "pin 41 is not on the Pi header (valid: 2-27)",
    );
    assert_eq!((line, col), (10, 1));
    assert_eq!(one("[hardware.pins]\n\n  buzzer = 1\n", "pin 1 "), (11, 3));
    // 17 is the default arming loop: the key the technician wrote is blamed.
    let (line, col) = one(
        "[hardware.pins]\ngreen = 17\n",
        "used by both `arming_loop` and `green`",
    );
    assert_eq!((line, col), (10, 1));
    // Both written: the later one is blamed, whatever the field order.
    assert_eq!(
        one(
            "[hardware.pins]\nred = 9\narming_loop = 9\n",
            "pin 9 is used by both"
        ),
        (11, 1)
    );
    assert!(problems("[hardware.pins]\nbuzzer = 2\nbarrier_up = 26\n").is_empty());
}

#[test]
fn capacity_must_add_up() {
    let (line, col) = one(
        "total = 12\n",
        "total is 12 but the classes add up to 10 (standard 10)",
    );
    assert_eq!((line, col), (9, 1));
    assert!(problems("total = 10\n").is_empty());
    // ada + ev over the class, reported at the ada entry.
    let (line, col) = one(
        "ada = { standard = 6 }\nev.standard = 5\n",
        "standard has 10 spots but 6 ADA + 5 EV",
    );
    assert_eq!((line, col), (9, 9));
    // EV held in a class the lot does not serve.
    assert_eq!(
        one("[capacity.ev]\ncompact = 1\n", "compact has 0 spots"),
        (10, 1)
    );
    let text = BASE.replace("standard = 10", "standard = 0");
    let err = parse(&text).unwrap_err();
    assert_eq!((err[0].line, err[0].col), (7, 2));
    assert!(err[0].message.contains("no spots"));
}

#[test]
fn tariff_amounts_and_currency_are_checked() {
    assert_eq!(
        one("[tariff]\ncurrency = \"eur\"\n", "3 capital letters"),
        (10, 1)
    );
    assert_eq!(
        one(
            "[tariff]\novertsay_hour_minor = 1\n",
            "did you mean `overstay_hour_minor`"
        ),
        (10, 1)
    );
    let ps = problems("[tariff]\nday_rate_minor = -5\ndaily_cap_minor = -6\n");
    let msgs: Vec<&str> = ps.iter().map(|p| p.2.as_str()).collect();
    assert_eq!(
        ps.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(),
        vec![(10, 1), (11, 1), (11, 1)]
    );
    assert!(msgs[0].contains("day_rate_minor is -5"), "{msgs:?}");
    assert!(
        msgs.iter().any(|m| m.contains("below day_rate_minor")),
        "{msgs:?}"
    );
    assert_eq!(
        one("[tariff]\ndaily_cap_minor = 100\n", "raise the cap"),
        (10, 1)
    );
}

#[test]
fn timings_and_retention_must_be_positive() {
    assert_eq!(
        one(
            "[lane]\nclose_delay_ms = 0\npass_timeout_s = 0\n",
            "pass_timeout_s must be more than 0"
        ),
        (11, 1)
    );
    assert_eq!(
        one("[lane]\nsignal_s = 0\n", "signal_s must be more than 0"),
        (10, 1)
    );
    assert_eq!(one("[store]\nretention_days = 0\n", "at least 1"), (10, 1));
    assert_eq!(
        one("[access]\nlate_grace_min = 1441\n", "longer than a day"),
        (10, 1)
    );
    assert_eq!(
        one(
            "[hardware]\nbackend = \"pi\"\ndemo_data = true\n",
            "needs backend"
        ),
        (11, 1)
    );
    assert_eq!(
        one("[mqtt]\nenabled = true\nhost = \"\"\n", "host is empty"),
        (11, 1)
    );
}

#[test]
fn tls_files_want_tls_on_and_come_in_pairs() {
    one("[mqtt]\nca_file = \"/etc/ca.pem\"\n", "tls = false");
    let ps = problems("[mqtt]\ntls = true\nclient_cert = \"/etc/g.crt\"\n");
    assert_eq!(ps.len(), 1, "{ps:#?}");
    assert!(ps[0].2.contains("needs client_key"), "{ps:#?}");
    one("[mqtt]\npassword_file = \"/etc/p\"\n", "username is not");
    let good = "[mqtt]\ntls = true\nca_file = \"/a\"\nclient_cert = \"/b\"\nclient_key = \"/c\"\nusername = \"u\"\npassword_file = \"/d\"\n";
    assert_eq!(problems(good), []);
}

#[test]
fn the_hq_public_key_must_be_an_ed25519_key() {
    // The public key of the seed [7; 32], as `openssl pkey ... | tail -c 32 | base64` prints it.
    let good = "6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=";
    assert_eq!(
        problems(&format!("[mqtt]\nhq_public_key = \"{good}\"\n")),
        []
    );
    assert_eq!(
        one(
            "[mqtt]\nhq_public_key = \"base64...\"\n",
            "not valid base64"
        ),
        (10, 1)
    );
    let short = "[mqtt]\nport = 1883\nhq_public_key = \"AAAA\"\n";
    assert_eq!(one(short, "decodes to 3 bytes"), (11, 1));
}

#[test]
fn the_sim_start_state_is_read_and_checked_at_its_keys() {
    let start = "[hardware.sim_start]\nsafety = \"occupied\"\nbarrier_up = \"occupied\"\n";
    let cfg = parse(&format!("{BASE}{start}")).unwrap_or_else(|ds| panic!("{ds:#?}"));
    let found = SensorStates {
        arming: SensorState::Clear,
        safety: SensorState::Occupied,
        barrier_up: SensorState::Occupied,
    };
    assert_eq!(cfg.hardware.sim_start, found);
    assert!(
        summary(&cfg).contains("starts with safety occupied, barrier_up occupied"),
        "{}",
        summary(&cfg)
    );
    let plain = parse(BASE).unwrap();
    assert_eq!(plain.hardware.sim_start, SensorStates::default());
    assert!(!summary(&plain).contains("starts with"));

    assert_eq!(
        one(
            "[hardware.sim_start]\nsaftey = \"occupied\"\n",
            "unknown key `saftey` in [hardware.sim_start]; did you mean `safety`?"
        ),
        (10, 1)
    );
    assert_eq!(
        one("[hardware.sim_start]\narming = \"parked\"\n", "`parked`"),
        (10, 10)
    );
    // Only the sim can start somewhere; clear is what any backend starts from.
    let pi = "[hardware]\nbackend = \"pi\"\n";
    assert_eq!(
        one(
            &format!("{pi}[hardware.sim_start]\narming = \"clear\"\nsafety = \"fault\"\n"),
            "sim_start.safety = \"fault\" needs backend = \"sim\""
        ),
        (13, 1)
    );
    assert!(
        problems(&format!(
            "{pi}[hardware.sim_start]\nbarrier_up = \"clear\"\n"
        ))
        .is_empty()
    );
}

#[test]
fn load_names_the_file_in_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.toml");
    std::fs::write(
        &path,
        format!("{BASE}[hardware.pins]\nred = 41\ngren = 5\n"),
    )
    .unwrap();
    let err = load(&path).unwrap_err();
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let file = path.display();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with(&format!("{file}:10:1: pin 41")),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!("{file}:11:1: unknown key `gren`")),
        "{text}"
    );

    let missing = dir.path().join("nope.toml");
    let err = load(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("nope.toml"), "{err}");

    std::fs::write(&path, DEMO).unwrap();
    assert_eq!(load(&path).unwrap(), parse(DEMO).unwrap());
}

#[test]
fn summary_says_what_the_gate_does() {
    let s = summary(&parse(DEMO).unwrap());
    for fact in [
        "Gate b1/main/entry-1",
        "entry and exit in one lane",
        "Asia/Ho_Chi_Minh",
        "Capacity: 35 spots",
        "standard      20  (2 ADA, 2 EV)",
        "motorcycle    10",
        "not served: large, oversize",
        "Anti-passback: soft",
        "from 30 min before",
        "to 60 min after",
        "50,000 VND per started day",
        "first 15 min free",
        "at most 80,000 VND a day",
        "a card counts only with a vehicle on the arming loop",
        "re-reads within 3000 ms are one tap",
        "10,000 VND per started hour",
        "demo/gate.db",
        "HQ link: off",
        "simulated, driven over demo/sim.sock",
        "demo/control.sock",
    ] {
        assert!(s.contains(fact), "summary lacks {fact:?}:\n{s}");
    }
    assert!(s.lines().count() <= 24, "more than one screen:\n{s}");
    let wide: Vec<&str> = s.lines().filter(|l| l.chars().count() > 80).collect();
    assert!(wide.is_empty(), "lines wider than 80 columns: {wide:#?}");

    let mut cfg = parse(EXAMPLE).unwrap();
    cfg.hardware.backend = Backend::Pi;
    cfg.hardware.pins.buzzer = None;
    cfg.access.anti_passback = AntiPassback::Hard;
    cfg.mqtt.enabled = true;
    cfg.mqtt.tls = true;
    cfg.mqtt.port = 8883;
    let s = summary(&cfg);
    for fact in [
        "Raspberry Pi",
        "arming loop 17",
        "buzzer none",
        "inputs debounced 50 ms, barrier driven by a held level",
        "hard",
        "mqtts://localhost:8883",
    ] {
        assert!(s.contains(fact), "summary lacks {fact:?}:\n{s}");
    }
}

#[test]
fn the_reader_follows_the_backend_unless_chosen() {
    let sim = parse(BASE).unwrap();
    assert_eq!(sim.hardware.reader(), ReaderKind::Sim);
    let pi = parse(&format!("{BASE}[hardware]\nbackend = \"pi\"\n")).unwrap();
    assert_eq!(pi.hardware.reader(), ReaderKind::Uart);
    // A real PN532 next to the simulated loops.
    let both = parse(&format!(
        "{BASE}[hardware]\nbackend = \"sim\"\nreader = \"uart\"\nreader_device = \"/dev/ttyUSB0\"\n"
    ))
    .unwrap();
    assert_eq!(both.hardware.reader(), ReaderKind::Uart);
    let s = summary(&both);
    assert!(
        s.contains("simulated") && s.contains("PN532 reader over UART at /dev/ttyUSB0"),
        "{s}"
    );
}

#[test]
fn reader_problems_are_reported_at_their_keys() {
    assert_eq!(
        one(
            "[hardware]\nbackend = \"pi\"\nreader = \"sim\"\n",
            "reader = \"sim\" needs backend = \"sim\""
        ),
        (11, 1)
    );
    assert_eq!(
        one(
            "[hardware]\nreader = \"uart\"\nreader_device = \"\"\n",
            "needs the reader's device file"
        ),
        (11, 1)
    );
    let ps = problems("[hardware]\nreader = \"usb\"\n");
    assert_eq!(ps.len(), 1, "{ps:#?}");
    assert_eq!((ps[0].0, ps[0].1), (10, 10), "{ps:#?}");
    assert!(ps[0].2.contains("uart"), "{ps:#?}");
}

#[test]
fn the_reader_device_follows_the_reader_unless_given() {
    let device = |extra: &str| {
        let cfg = parse(&format!("{BASE}[hardware]\n{extra}")).unwrap_or_else(|d| panic!("{d:#?}"));
        cfg.hardware.reader_device().to_string()
    };
    assert_eq!(device("backend = \"pi\"\n"), "/dev/ttyAMA0");
    assert_eq!(device("reader = \"spi\"\n"), "/dev/spidev0.0");
    assert_eq!(device("reader = \"i2c\"\n"), "/dev/i2c-1");
    assert_eq!(
        device("reader = \"i2c\"\nreader_device = \"/dev/i2c-3\"\n"),
        "/dev/i2c-3"
    );
    let s = summary(&parse(&format!("{BASE}[hardware]\nreader = \"spi\"\n")).unwrap());
    assert!(s.contains("PN532 reader over SPI at /dev/spidev0.0"), "{s}");
}

#[test]
fn a_bus_reader_needs_a_node_of_its_bus() {
    assert_eq!(
        one(
            "[hardware]\nreader = \"spi\"\nreader_device = \"/dev/ttyAMA0\"\n",
            "reader = \"spi\": \"/dev/ttyAMA0\" is not an SPI device: write it /dev/spidevB.C"
        ),
        (11, 1)
    );
    assert_eq!(
        one(
            "[hardware]\nreader = \"i2c\"\nreader_device = \"/dev/spidev0.0\"\n",
            "reader = \"i2c\": \"/dev/spidev0.0\" is not an I2C device: write it /dev/i2c-N"
        ),
        (11, 1)
    );
    assert_eq!(
        one(
            "[hardware]\nreader = \"spi\"\nreader_device = \"\"\n",
            "needs the reader's device file, e.g. \"/dev/spidev0.0\""
        ),
        (11, 1)
    );
}
