//! The README's wiring table says what `config/example.toml` wires, and
//! where those BCM pins are on the Pi's 40-pin header.

use std::collections::BTreeMap;
use std::path::Path;

/// BCM GPIO number -> physical pin on the 40-pin header.
const HEADER: [(u8, u8); 26] = [
    (2, 3),
    (3, 5),
    (4, 7),
    (17, 11),
    (27, 13),
    (22, 15),
    (10, 19),
    (9, 21),
    (11, 23),
    (5, 29),
    (6, 31),
    (13, 33),
    (19, 35),
    (26, 37),
    (14, 8),
    (15, 10),
    (18, 12),
    (23, 16),
    (24, 18),
    (25, 22),
    (8, 24),
    (7, 26),
    (12, 32),
    (16, 36),
    (20, 38),
    (21, 40),
];

/// The table's rows for GPIO pins: config key -> (BCM, header pin).
fn table() -> BTreeMap<String, (u8, u8)> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("### Wiring").expect("a wiring section");
    readme[start..]
        .lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let key = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            let bcm = cells.get(3)?.parse().ok()?;
            let pin = cells.get(4)?.parse().ok()?;
            Some((key.to_string(), (bcm, pin)))
        })
        .collect()
}

#[test]
fn the_wiring_table_matches_the_example_config_and_the_header() {
    let cfg =
        parkgate::config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml"))
            .unwrap();
    let p = &cfg.hardware.pins;
    let example: BTreeMap<String, u8> = [
        ("arming_loop", Some(p.arming_loop)),
        ("safety_loop", Some(p.safety_loop)),
        ("barrier_up", p.barrier_up),
        ("barrier", Some(p.barrier)),
        ("green", Some(p.green)),
        ("red", Some(p.red)),
        ("buzzer", p.buzzer),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_string(), v?)))
    .collect();
    let table = table();
    let bcm: BTreeMap<String, u8> = table.iter().map(|(k, (b, _))| (k.clone(), *b)).collect();
    assert_eq!(bcm, example, "README wiring table vs config/example.toml");
    let header: BTreeMap<u8, u8> = HEADER.into_iter().collect();
    for (key, (b, pin)) in &table {
        assert_eq!(
            header.get(b),
            Some(pin),
            "{key}: BCM {b} is not header pin {pin}"
        );
    }
}
