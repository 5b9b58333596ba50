//! Semantic checks of a well-typed config: each problem is reported at the
//! key it is about, and says what to write instead.

use parkgate_hal::{Sensor, SensorState};

use super::locate::Locator;
use super::{Config, Diagnostic, ReaderKind};
use crate::domain::model::VehicleClass;

/// Every semantic problem of `cfg`, located through `loc`.
/// The longest reservation grace window, in minutes (see `store::facts`).
const MAX_GRACE_MIN: u32 = 24 * 60;

pub(super) fn check(cfg: &Config, loc: &Locator) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut bad = |path: &[&str], msg: String| out.push(loc.diag(path, msg));
    gate(cfg, &mut bad);
    capacity(cfg, &mut bad);
    numbers(cfg, &mut bad);
    super::gpio::check(cfg, loc, &mut bad);
    sim_start(cfg, &mut bad);
    reader(cfg, &mut bad);
    hq_key(cfg, &mut bad);
    out
}

pub(super) type Report<'a> = dyn FnMut(&[&str], String) + 'a;

fn gate(cfg: &Config, bad: &mut Report) {
    let g = &cfg.gate;
    for (key, value) in [("site", &g.site), ("lot", &g.lot), ("gate", &g.gate)] {
        let ok = (1..=32).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            bad(
                &["gate", key],
                format!(
                    "{key} {value:?} is not a valid name: use 1-32 of a-z, 0-9 and '-' (e.g. \"b1\")"
                ),
            );
        }
    }
    if g.timezone.parse::<chrono_tz::Tz>().is_err() {
        let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
        let hint = match closest(&g.timezone, names) {
            Some(near) => format!("did you mean {near:?}?"),
            None => "use an IANA name such as \"Europe/Berlin\" or \"Asia/Ho_Chi_Minh\"".into(),
        };
        bad(
            &["gate", "timezone"],
            format!("unknown time zone {:?}; {hint}", g.timezone),
        );
    }
}

fn capacity(cfg: &Config, bad: &mut Report) {
    let c = &cfg.capacity;
    let sum: u64 = VehicleClass::ALL.iter().map(|&k| u64::from(c.of(k))).sum();
    let parts: Vec<String> = VehicleClass::ALL
        .iter()
        .filter(|&&k| c.of(k) > 0)
        .map(|&k| format!("{} {}", k.as_str(), c.of(k)))
        .collect();
    match c.total {
        Some(total) if u64::from(total) != sum => bad(
            &["capacity", "total"],
            format!(
                "total is {total} but the classes add up to {sum} ({}); fix total or the class spots, or drop total",
                if parts.is_empty() {
                    "none given".into()
                } else {
                    parts.join(" + ")
                }
            ),
        ),
        _ if sum == 0 => bad(
            &["capacity"],
            "the lot has no spots: give at least one class its spots, e.g. standard = 20".into(),
        ),
        _ => {}
    }
    for class in VehicleClass::ALL {
        let (ada, ev, spots) = (c.ada_of(class), c.ev_of(class), c.of(class));
        if u64::from(ada) + u64::from(ev) > u64::from(spots) {
            let name = class.as_str();
            let key = if c.ada.contains_key(&class) {
                "ada"
            } else {
                "ev"
            };
            bad(
                &["capacity", key, name],
                format!(
                    "{name} has {spots} spots but {ada} ADA + {ev} EV are held in them; \
                     lower ada.{name}/ev.{name} or raise {name}"
                ),
            );
        }
    }
}

fn numbers(cfg: &Config, bad: &mut Report) {
    let l = &cfg.lane;
    for (key, value, why) in [
        (
            "repeat_read_ms",
            l.repeat_read_ms,
            "a held card would be read as many taps",
        ),
        (
            "pass_timeout_s",
            l.pass_timeout_s,
            "an accepted vehicle would be voided at once",
        ),
        (
            "held_open_s",
            l.held_open_s,
            "every opening would raise barrier_held_open",
        ),
        (
            "loop_fault_s",
            l.loop_fault_s,
            "every vehicle would raise loop_fault",
        ),
        (
            "signal_s",
            l.signal_s,
            "no driver would see a green or a red",
        ),
    ] {
        if value == 0 {
            bad(&["lane", key], format!("{key} must be more than 0 ({why})"));
        }
    }

    let t = &cfg.tariff;
    let cur = &t.currency;
    if cur.len() != 3 || !cur.bytes().all(|b| b.is_ascii_uppercase()) {
        bad(
            &["tariff", "currency"],
            format!(
                "currency {cur:?} is not an ISO 4217 code: use 3 capital letters, e.g. \"VND\""
            ),
        );
    }
    for (key, value) in [
        ("day_rate_minor", t.day_rate_minor),
        ("daily_cap_minor", t.daily_cap_minor),
        ("overstay_hour_minor", t.overstay_hour_minor),
    ] {
        if value < 0 {
            bad(
                &["tariff", key],
                format!("{key} is {value}; an amount cannot be negative"),
            );
        }
    }
    if t.daily_cap_minor < t.day_rate_minor {
        bad(
            &["tariff", "daily_cap_minor"],
            format!(
                "daily_cap_minor {} is below day_rate_minor {}; raise the cap to at least the day rate",
                t.daily_cap_minor, t.day_rate_minor
            ),
        );
    }

    if cfg.hardware.demo_data && cfg.hardware.backend != super::Backend::Sim {
        bad(
            &["hardware", "demo_data"],
            "demo_data needs backend = \"sim\": a real gate's replica comes from HQ".into(),
        );
    }

    // The store fetches a user's bookings within a day of now: a longer
    // grace window would miss some.
    for (key, minutes) in [
        ("early_grace_min", cfg.access.early_grace_min),
        ("late_grace_min", cfg.access.late_grace_min),
    ] {
        if minutes > MAX_GRACE_MIN {
            bad(
                &["access", key],
                format!(
                    "{key} {minutes} is longer than a day; use at most {MAX_GRACE_MIN} minutes"
                ),
            );
        }
    }

    if cfg.store.retention_days == 0 {
        bad(
            &["store", "retention_days"],
            "retention_days must be at least 1 (HQ may ask again for recent events)".into(),
        );
    }
    if cfg.store.path.as_os_str().is_empty() {
        bad(
            &["store", "path"],
            "store path is empty; give a file, e.g. \"/var/lib/parkgate/gate.db\"".into(),
        );
    }

    let m = &cfg.mqtt;
    if m.enabled && m.host.is_empty() {
        bad(
            &["mqtt", "host"],
            "mqtt is enabled but host is empty; give the broker's name".into(),
        );
    }
    if m.port == 0 {
        bad(
            &["mqtt", "port"],
            "port 0 is not a broker port; use 1883 (plain) or 8883 (TLS)".into(),
        );
    }
    // A certificate given but TLS off would be silently ignored: the
    // technician meant TLS, and a plain connection would send the password
    // in clear.
    for (key, set) in [
        ("ca_file", m.ca_file.is_some()),
        ("client_cert", m.client_cert.is_some()),
        ("client_key", m.client_key.is_some()),
    ] {
        if set && !m.tls {
            bad(
                &["mqtt", key],
                format!("{key} is set but tls = false; set tls = true (port 8883) or remove {key}"),
            );
        }
    }
    if m.client_cert.is_some() != m.client_key.is_some() {
        let (have, missing) = if m.client_cert.is_some() {
            ("client_cert", "client_key")
        } else {
            ("client_key", "client_cert")
        };
        bad(
            &["mqtt", have],
            format!("{have} needs {missing} too (mutual TLS takes the certificate and its key)"),
        );
    }
    if m.password_file.is_some() && m.username.is_none() {
        bad(
            &["mqtt", "password_file"],
            "password_file is set but username is not; give the broker user name".into(),
        );
    }
    if m.replica_stale_h == 0 {
        bad(
            &["mqtt", "replica_stale_h"],
            "replica_stale_h must be at least 1 (hours)".into(),
        );
    }
    if m.keep_alive_s == 0 {
        bad(
            &["mqtt", "keep_alive_s"],
            "keep_alive_s must be more than 0 (e.g. 30)".into(),
        );
    }
}

/// HQ's command key is read here too, so a mistyped key stops the gate at
/// start rather than rejecting every command HQ sends later.
fn hq_key(cfg: &Config, bad: &mut Report) {
    if let Some(key) = &cfg.mqtt.hq_public_key
        && let Err(e) = crate::domain::command::parse_key(key)
    {
        bad(
            &["mqtt", "hq_public_key"],
            format!(
                "{e}; give HQ's raw 32-byte Ed25519 public key in base64, 44 characters \
                 (see README, \"Signing a command\"), or remove it to refuse all commands"
            ),
        );
    }
}

/// The reader is chosen apart from the backend, but the sim's reader exists
/// only on the sim, and a PN532 needs a device to open.
fn reader(cfg: &Config, bad: &mut Report) {
    let h = &cfg.hardware;
    let kind = h.reader();
    if kind == ReaderKind::Sim {
        if h.backend != super::Backend::Sim {
            bad(
                &["hardware", "reader"],
                "reader = \"sim\" needs backend = \"sim\" (cards are tapped over its socket); \
                 on a Pi use \"uart\", \"spi\" or \"i2c\""
                    .into(),
            );
        }
        return;
    }
    let device = h.reader_device();
    if device.trim().is_empty() {
        bad(
            &["hardware", "reader_device"],
            format!(
                "reader = \"{}\" needs the reader's device file, e.g. \"{}\"",
                kind.name(),
                kind.default_device()
            ),
        );
    } else if let Some(problem) = bus_device_problem(kind, device) {
        bad(&["hardware", "reader_device"], problem);
    }
    if !cfg!(feature = "pn532") {
        bad(
            &["hardware", "reader"],
            format!(
                "this build has no PN532 driver (built without feature `pn532`) for \
                 reader = \"{}\"; rebuild with it or use reader = \"sim\"",
                kind.name()
            ),
        );
    }
}

/// What is wrong with `device` as the bus `kind` names, if anything: a
/// serial reader may be on any tty, but SPI and I2C are named by their
/// node (a reader on SPI at `/dev/ttyAMA0` is a half-edited file).
#[cfg(feature = "pn532")]
fn bus_device_problem(kind: ReaderKind, device: &str) -> Option<String> {
    use parkgate_hal::pn532::bus;
    let problem = match kind {
        ReaderKind::Spi => bus::spi::parse_device(device).err()?.to_string(),
        ReaderKind::I2c => bus::i2c::parse_device(device).err()?.to_string(),
        ReaderKind::Sim | ReaderKind::Uart => return None,
    };
    Some(format!("reader = \"{}\": {problem}", kind.name()))
}

#[cfg(not(feature = "pn532"))]
fn bus_device_problem(_: ReaderKind, _: &str) -> Option<String> {
    None
}

/// A start state only the sim can take: on a Pi the inputs are what they are.
/// Clear is allowed everywhere, so a file can be moved to a Pi as is.
fn sim_start(cfg: &Config, bad: &mut Report) {
    if cfg.hardware.backend == super::Backend::Sim {
        return;
    }
    for sensor in Sensor::ALL {
        let state = cfg.hardware.sim_start.get(sensor);
        if state != SensorState::Clear {
            bad(
                &["hardware", "sim_start", sensor.name()],
                format!(
                    "sim_start.{sensor} = \"{state}\" needs backend = \"sim\": a real gate \
                     reads its inputs; remove it or make it \"clear\""
                ),
            );
        }
    }
}

/// The candidate most like `word` (at most a third of it edited), for
/// "did you mean" hints.
pub(super) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    let lower = word.to_lowercase();
    candidates
        .map(|c| (edits(&lower, &c.to_lowercase()), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Edit distance in characters, a swap of neighbours counting as one edit
/// (the commonest typo: `hots` for `host`).
fn edits(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: edits from a[..i] to b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::{closest, edits};

    #[test]
    fn edits_counts_swaps_as_one() {
        assert_eq!(edits("host", "host"), 0);
        assert_eq!(edits("hots", "host"), 1);
        assert_eq!(edits("grn", "green"), 2);
        assert_eq!(edits("", "abc"), 3);
        assert_eq!(edits("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_only_suggests_near_words() {
        let keys = ["host", "port", "tls"];
        assert_eq!(closest("hots", keys.into_iter()), Some("host"));
        assert_eq!(closest("Port", keys.into_iter()), Some("port"));
        assert_eq!(closest("banana", keys.into_iter()), None);
    }
}
