//! Reading a config file: TOML syntax, serde types, unknown keys, then the
//! semantic checks of [`super::validate`], all reported with `line:col`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};

use super::locate::Locator;
use super::validate::{self, closest};
use super::{Config, GateId};
use crate::domain::model::{Role, VehicleClass};
use crate::domain::tariff::Tariff;

/// One problem in a config file, at the key (or value) it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("{}: cannot read config file: {source}", path.display())]
    Read {
        /// The file we tried to read.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file has problems; displays as one `file:line:col: message` per line.
    #[error("{}", render(path, diagnostics))]
    Invalid {
        /// The file the diagnostics are about.
        path: PathBuf,
        /// Every problem found, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

fn render(path: &Path, diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics
        .iter()
        .map(|d| format!("{}:{d}", path.display()))
        .collect();
    lines.join("\n")
}

/// Reads and checks the config file at `path` (see [`parse`]).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|diagnostics| ConfigError::Invalid {
        path: path.to_path_buf(),
        diagnostics,
    })
}

/// Parses and checks a config file's text.
///
/// Reports every problem it can find in one go, sorted by position: every
/// unknown key, a wrong type (serde stops at the first), and, when the
/// types are right, every semantic problem (names, time zone, capacity,
/// tariff, timings, pins). A TOML syntax error is reported alone.
pub fn parse(text: &str) -> Result<Config, Vec<Diagnostic>> {
    let loc = Locator::new(text).map_err(|d| vec![d])?;
    let schema = schema();
    let mut diags = Vec::new();

    // `[tariff]` is read by `lenient` (its type lives in tariff.rs and denies
    // unknown fields), so its strays are found here rather than by serde_ignored.
    let tariff_keys = table_keys(&Tariff::default());
    for (key, at) in loc.keys(&["tariff"]) {
        if !tariff_keys.contains(&key) {
            let path = ["tariff".to_string(), key];
            diags.push(loc.at_offset(at, unknown_key_message(&loc, &schema, &path)));
        }
    }

    let mut ignored = Vec::new();
    let parsed: Result<Config, _> = toml::Deserializer::parse(text)
        .and_then(|de| serde_ignored::deserialize(de, |p| ignored.push(segments(&p))));
    for path in &ignored {
        let names: Vec<&str> = path.iter().map(String::as_str).collect();
        diags.push(loc.diag(&names, unknown_key_message(&loc, &schema, path)));
    }
    match parsed {
        Ok(cfg) if diags.is_empty() => {
            diags = validate::check(&cfg, &loc);
            if diags.is_empty() {
                return Ok(cfg);
            }
        }
        Ok(cfg) => diags.extend(validate::check(&cfg, &loc)),
        Err(e) => {
            diags.push(type_error(&loc, &e));
            // serde stopped at the error, so keys after it were never seen:
            // find the rest of the strays by walking the file against the schema.
            let mut seen: Vec<Vec<String>> = ignored;
            let mut stray = Vec::new();
            strays(&loc, &schema, &mut Vec::new(), &mut stray);
            for path in stray {
                if !seen.contains(&path) && path.first().is_none_or(|s| s != "tariff") {
                    let names: Vec<&str> = path.iter().map(String::as_str).collect();
                    diags.push(loc.diag(&names, unknown_key_message(&loc, &schema, &path)));
                    seen.push(path);
                }
            }
        }
    }
    diags.sort_by_key(|d| (d.line, d.col));
    diags.dedup();
    Err(diags)
}

/// Deserializes `T` from a table after dropping the keys `T` does not know
/// (reported separately by [`parse`]); for section types that deny them.
pub(super) fn lenient<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Serialize + DeserializeOwned,
{
    let mut table = toml::Table::deserialize(de)?;
    let known = table_keys(&T::default());
    table.retain(|k, _| known.iter().any(|n| n == k));
    let mut bad = None;
    // Try key by key first so a wrong type names its key: this table has
    // lost its spans, so the error can only point at the section.
    for (key, value) in &table {
        let mut one = toml::Table::try_from(T::default()).map_err(D::Error::custom)?;
        one.insert(key.clone(), value.clone());
        if let Err(e) = T::deserialize(toml::Value::Table(one)) {
            bad = Some(format!("`{key}`: {}", e.message().trim()));
            break;
        }
    }
    match bad {
        Some(msg) => Err(D::Error::custom(msg)),
        None => T::deserialize(toml::Value::Table(table)).map_err(D::Error::custom),
    }
}

/// A serde error as a diagnostic at its span. An error from [`lenient`]
/// names its key as "`key`: ..."; it is moved from the section to that key.
fn type_error(loc: &Locator, e: &toml::de::Error) -> Diagnostic {
    let mut at = e.span().map_or(0, |s| s.start);
    let msg = e.message().trim();
    let lenient_key = msg.strip_prefix('`').and_then(|m| m.split_once("`: "));
    if let Some(v) = lenient_key.and_then(|(key, _)| loc.find_value(&["tariff", key])) {
        at = v;
    }
    let hint = if msg.starts_with("missing field") {
        "; see config/example.toml"
    } else {
        ""
    };
    loc.at_offset(at, format!("{msg}{hint}"))
}

/// The key names a value of `T` serializes to (its known keys, when no
/// field of the default is `None`).
fn table_keys<T: Serialize>(value: &T) -> Vec<String> {
    toml::Table::try_from(value)
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every key the file may have: a config with every optional key set.
pub(super) fn schema() -> toml::Table {
    let mut cfg = Config {
        gate: GateId {
            site: "s".into(),
            lot: "l".into(),
            gate: "g".into(),
            role: Role::Both,
            timezone: "UTC".into(),
        },
        capacity: Default::default(),
        lane: Default::default(),
        access: Default::default(),
        tariff: Default::default(),
        store: Default::default(),
        mqtt: Default::default(),
        hardware: Default::default(),
        control: Default::default(),
    };
    cfg.capacity.total = Some(0);
    for class in VehicleClass::ALL {
        cfg.capacity.ada.insert(class, 0);
        cfg.capacity.ev.insert(class, 0);
    }
    let m = &mut cfg.mqtt;
    m.ca_file = Some("x".into());
    m.client_cert = Some("x".into());
    m.client_key = Some("x".into());
    m.username = Some("x".into());
    m.password_file = Some("x".into());
    m.hq_public_key = Some("x".into());
    cfg.hardware.reader_kind = Some(super::ReaderKind::Uart);
    cfg.hardware.pins.barrier_up = Some(2);
    cfg.hardware.pins.buzzer = Some(3);
    cfg.hardware.pins.barrier_close = Some(4);
    toml::Table::try_from(&cfg).expect("the config types serialize to TOML")
}

/// Paths of the keys in the file under `path` that `schema` does not have.
/// Class-keyed maps are left to serde, which names the valid classes.
fn strays(loc: &Locator, schema: &toml::Table, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let names: Vec<&str> = path.iter().map(String::as_str).collect();
    if names == ["capacity", "ada"] || names == ["capacity", "ev"] {
        return;
    }
    for (key, _) in loc.keys(&names) {
        path.push(key);
        match schema.get(path.last().expect("just pushed")) {
            None => out.push(path.clone()),
            Some(toml::Value::Table(sub)) => strays(loc, sub, path, out),
            Some(_) => {}
        }
        path.pop();
    }
}

/// The key names of a serde_ignored path.
fn segments(path: &serde_ignored::Path) -> Vec<String> {
    use serde_ignored::Path as P;
    match path {
        P::Root => Vec::new(),
        P::Seq { parent, index } => {
            let mut v = segments(parent);
            v.push(index.to_string());
            v
        }
        P::Map { parent, key } => {
            let mut v = segments(parent);
            v.push(key.clone());
            v
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            segments(parent)
        }
    }
}

/// "unknown key `x` in [sec]; did you mean `y`?" (or the list of known keys).
fn unknown_key_message(loc: &Locator, schema: &toml::Table, path: &[String]) -> String {
    let Some((key, parents)) = path.split_last() else {
        return "unknown key".into();
    };
    let mut known = Some(schema);
    for p in parents {
        known = known.and_then(|t| t.get(p)).and_then(toml::Value::as_table);
    }
    let known: Vec<&str> = known
        .map(|t| t.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let names: Vec<&str> = path.iter().map(String::as_str).collect();
    let is_table = loc.item(&names).is_some_and(|i| i.is_table_like());
    let what = match (parents.is_empty(), is_table) {
        (true, true) => format!("unknown section [{key}]"),
        (true, false) => format!("unknown key `{key}` at the top level"),
        (false, _) => format!("unknown key `{key}` in [{}]", parents.join(".")),
    };
    match closest(key, known.iter().copied()) {
        Some(near) => format!("{what}; did you mean `{near}`?"),
        None if known.is_empty() => format!("{what}; remove it"),
        None => format!("{what}; remove it (known: {})", known.join(", ")),
    }
}
