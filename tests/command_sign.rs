//! The README's recipe for signing a command with `openssl`, run as written:
//! the gate must take the public key it extracts and accept the envelope it
//! builds. Reading the recipe out of the README keeps the two from drifting.

use std::path::Path;
use std::process::Command;

use parkgate::domain::command::{parse_key, verify};
use parkgate::domain::contract::{Cmd, CommandBody};

const README: &str = include_str!("../README.md");
const HEADING: &str = "### Signing a command";

/// The shell lines of the first indented block under `HEADING`, with
/// continuations joined and the `mosquitto_pub` line (which needs a broker)
/// left out.
fn recipe() -> Vec<String> {
    let section = README
        .split_once(HEADING)
        .expect("README has the signing subsection")
        .1;
    let block: Vec<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with("    "))
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .filter_map(|l| l.strip_prefix("    "))
        .collect();
    let joined = block.join("\n").replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| !l.starts_with("mosquitto_pub"))
        .map(str::to_owned)
        .collect()
}

fn have_openssl() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(dir: &Path, script: &str) {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "the recipe failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_recipe_still_ends_by_publishing_to_the_gate() {
    let section = README.split_once(HEADING).unwrap().1;
    assert!(
        section.contains("-t 'parkgate/v1/b1/main/gates/entry-1/commands' -q 1"),
        "the recipe's mosquitto_pub line changed"
    );
}

#[test]
fn the_readme_recipe_signs_what_the_gate_accepts() {
    if !have_openssl() {
        eprintln!("SKIPPED: `openssl` is not installed, so the signing recipe cannot run");
        return;
    }
    let lines = recipe();
    assert!(
        lines.iter().any(|l| l.contains("pkeyutl -sign")),
        "{lines:#?}"
    );
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &lines.join("\n"));

    let key_text = std::fs::read_to_string(dir.path().join("hq-sign.pub")).unwrap();
    let key = parse_key(&key_text).expect("the gate takes the extracted public key");

    // Checked at the moment the body says it was issued: the recipe reads
    // the real clock, this test does not.
    let body: CommandBody =
        serde_json::from_slice(&std::fs::read(dir.path().join("body.json")).unwrap()).unwrap();
    let envelope = std::fs::read(dir.path().join("envelope.json")).unwrap();
    let verified = verify(&envelope, &key, "entry-1", body.issued_at).expect("accepted");
    assert_eq!(verified.body, body);
    assert_eq!(verified.body.cmd, Cmd::Open);

    // The same envelope is refused by another gate and once expired.
    assert!(verify(&envelope, &key, "exit-1", body.issued_at).is_err());
    assert!(verify(&envelope, &key, "entry-1", body.expires_at).is_err());
}
