//! The wall clock stepped under a running gate, as NTP does on a Pi that
//! booted without a battery clock: timers keep to the monotonic clock, the
//! step is noticed once, and events say when the clock was in doubt.

mod common;

use common::{Gate, cards, kinds, of_type, time};
use serde_json::json;

const HOUR_MS: i64 = 3_600_000;

#[tokio::test]
async fn a_clock_stepped_back_mid_passage_holds_nothing_up_and_is_alerted_once() {
    let mut gate = Gate::start(&[("role", "\"entry\"")]).await;
    gate.badge_admitted(cards::ALICE).await;
    let stepped = gate.step_wall(-HOUR_MS).await;
    assert_eq!(stepped, time(&json!("2026-11-23T06:58:00+07:00")));

    // The car passes; the arm comes down after the close delay on the
    // monotonic clock, not an hour later.
    gate.drive_through(1).await;
    let status = gate.settle().await;
    assert_eq!(status["barrier"], "down");
    assert_eq!(status["clock"], "unsynced");

    gate.advance(5_000).await;
    gate.badge_admitted(cards::BOB).await;
    gate.drive_through(1).await;

    let events = gate.events();
    assert_eq!(
        kinds(&events),
        ["check_in", "alert:clock_unsynced", "check_in"]
    );
    assert_eq!(events[0]["clock"], "synced");
    let alert = &events[1];
    let message = alert["message"].as_str().unwrap();
    assert!(message.contains("back 1 h"), "{message}");
    assert_eq!(alert["clock"], "unsynced");
    assert_eq!(events[2]["clock"], "unsynced", "recorded while in doubt");
    assert!(
        time(&events[2]["at"]) < time(&events[0]["at"]),
        "stamped with the wall clock as it now reads"
    );
    assert_eq!(
        of_type(&events, "void").len(),
        0,
        "nothing that passed is voided"
    );
}

#[tokio::test]
async fn a_clock_stepped_forward_a_month_fires_no_timer_early() {
    let mut gate = Gate::start(&[("role", "\"entry\"")]).await;
    gate.badge_admitted(cards::ALICE).await;
    gate.step_wall(30 * 24 * HOUR_MS).await;
    gate.advance(29_000).await;
    let status = gate.settle().await;
    assert_eq!(
        status["lane"], "open",
        "the pass timeout is 30 s of real time"
    );
    assert_eq!(status["barrier"], "up");

    gate.drive_through(1).await;
    let events = gate.events();
    assert_eq!(kinds(&events), ["check_in", "alert:clock_unsynced"]);
    assert!(
        events[1]["message"].as_str().unwrap().contains("forward"),
        "{events:?}"
    );
    assert_eq!(gate.settle().await["occupancy"], json!({"standard": 1}));
}

#[tokio::test]
async fn a_stay_across_a_step_back_never_has_a_negative_duration() {
    let mut gate = Gate::start(&[]).await;
    gate.badge_admitted(cards::BOB).await;
    gate.drive_through(1).await;
    gate.step_wall(-2 * HOUR_MS).await;
    gate.advance(60_000).await;
    let text = gate.badge_admitted(cards::BOB).await;
    assert!(text.starts_with("Goodbye Bob Nguyen"), "{text}");
    gate.drive_through(1).await;

    let events = gate.events();
    let check_out = of_type(&events, "check_out")[0];
    assert_eq!(check_out["duration_s"], 0, "never negative");
    assert!(check_out["fee"]["amount_minor"].as_i64().unwrap() >= 0);
    assert_eq!(check_out["overstay_s"], 0);
    assert_eq!(check_out["clock"], "unsynced");
}

#[tokio::test]
async fn while_the_kernel_says_unsynchronised_events_say_so_and_one_alert_is_raised() {
    let mut gate = Gate::start(&[]).await;
    let status = gate.settle().await;
    assert_eq!(
        (&status["clock"], &status["clock_synced"]),
        (&json!("synced"), &json!(true))
    );

    // NTP has not synchronised the Pi's clock (yet): asked again and again.
    gate.kernel_clock(false).await;
    gate.kernel_clock(false).await;
    gate.advance(60_000).await;
    let status = gate.settle().await;
    assert_eq!(status["clock"], "unsynced");
    assert_eq!(status["clock_synced"], false);
    let why = status["clock_doubt"].as_str().unwrap();
    assert!(why.starts_with("the kernel says not synchronised"), "{why}");
    let text = common::stdout(&gate.cli(&["status"]));
    assert!(
        text.contains("\nclock     kernel NOT synchronised; events stamped unsynced: the kernel"),
        "{text}"
    );
    gate.badge_admitted(cards::BOB).await;
    gate.drive_through(1).await;

    // Synchronised, with no step: believed at once.
    gate.kernel_clock(true).await;
    assert_eq!(gate.settle().await["clock_doubt"], json!(null));
    gate.badge_admitted(cards::ALICE).await;
    gate.drive_through(1).await;

    // Sync lost again: a second alert.
    gate.kernel_clock(false).await;
    gate.kernel_clock(false).await;

    let events = gate.events();
    assert_eq!(
        kinds(&events),
        [
            "alert:clock_unsynced",
            "check_in",
            "check_in",
            "alert:clock_unsynced"
        ]
    );
    let message = events[0]["message"].as_str().unwrap();
    assert!(message.starts_with("The kernel says the wall clock is not synchronised"));
    let clocks: Vec<_> = events.iter().map(|e| e["clock"].clone()).collect();
    assert_eq!(clocks, ["unsynced", "unsynced", "synced", "unsynced"]);
}
