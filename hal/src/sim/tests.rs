//! The sim over a real Unix socket in a temporary directory. Every wait is on
//! a reply or a stream, never a sleep.

use serde_json::json;
use tempfile::TempDir;

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use tokio::task::unconstrained;

use serde_json::Value;

use super::*;
use crate::{Buzz, Credential, Light, ReaderHealth};

/// A running sim: the handles, the socket path, and the dir that holds it.
struct Lane {
    _dir: TempDir,
    path: PathBuf,
    reader: SimReader,
    presence: SimPresence,
    barrier: SimBarrier,
    feedback: SimFeedback,
}

fn start() -> Lane {
    start_with(SensorStates::default())
}

/// A running sim whose inputs start in `sensors`.
fn start_with(sensors: SensorStates) -> Lane {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.sock");
    let parts = bind(&path, sensors).unwrap();
    assert_eq!(parts.server.path(), path);
    tokio::spawn(parts.server.run());
    Lane {
        _dir: dir,
        path,
        reader: parts.reader,
        presence: parts.presence,
        barrier: parts.barrier,
        feedback: parts.feedback,
    }
}

impl Lane {
    async fn client(&self) -> SimClient {
        SimClient::connect(&self.path).await.unwrap()
    }
}

fn vehicle(sensor: Sensor, state: SensorState) -> SimRequest {
    SimRequest::Vehicle { sensor, state }
}

#[tokio::test]
async fn a_tap_reaches_the_reader_with_its_uid() {
    let mut lane = start();
    let mut sim = lane.client().await;
    let reply = sim
        .request(&SimRequest::Tap {
            card: "04a1b2c3d4e5f6".into(),
        })
        .await
        .unwrap();
    assert_eq!(reply, json!({"ok": true}));
    let event = lane.reader.next_event().await.unwrap();
    let expected = Credential {
        uid: vec![0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6],
    };
    assert_eq!(event, ReaderEvent::Card(expected));
}

#[tokio::test]
async fn corrupt_and_failed_auth_taps_have_their_own_events() {
    let mut lane = start();
    let mut sim = lane.client().await;
    sim.request(&SimRequest::TapCorrupt).await.unwrap();
    sim.request(&SimRequest::TapAuthFailed {
        card: "DEADBEEF".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        lane.reader.next_event().await.unwrap(),
        ReaderEvent::Misread
    );
    assert_eq!(
        lane.reader.next_event().await.unwrap(),
        ReaderEvent::AuthFailed(Credential::from_hex("DEADBEEF").unwrap())
    );
}

#[tokio::test]
async fn a_bad_card_is_refused_and_nothing_reaches_the_reader() {
    let mut lane = start();
    let mut sim = lane.client().await;
    let err = sim
        .request(&SimRequest::Tap {
            card: "04A1ZZ".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HalError::Refused(m) if m.contains("not a hex digit")),
        "{err}"
    );
    // The next event is the next good tap: the bad one queued nothing.
    sim.request(&SimRequest::Tap {
        card: "01020304".into(),
    })
    .await
    .unwrap();
    let event = lane.reader.next_event().await.unwrap();
    assert_eq!(
        event,
        ReaderEvent::Card(Credential::from_hex("01020304").unwrap())
    );
}

#[tokio::test]
async fn a_vehicle_reaches_presence_and_current_reflects_it() {
    let mut lane = start();
    let mut sim = lane.client().await;
    assert_eq!(lane.presence.current(Sensor::Arming), SensorState::Clear);
    let reply = sim
        .request(&vehicle(Sensor::Arming, SensorState::Occupied))
        .await
        .unwrap();
    assert_eq!(reply["changed"], true);
    assert_eq!(lane.presence.current(Sensor::Arming), SensorState::Occupied);
    assert_eq!(lane.presence.current(Sensor::Safety), SensorState::Clear);
    assert!(lane.presence.fitted(Sensor::BarrierUp));
    let event = lane.presence.next_event().await.unwrap();
    assert_eq!(
        event,
        SensorEvent {
            sensor: Sensor::Arming,
            state: SensorState::Occupied
        }
    );

    // The same state again is no edge: no event, and the reply says so.
    let again = sim
        .request(&vehicle(Sensor::Arming, SensorState::Occupied))
        .await
        .unwrap();
    assert_eq!(again["changed"], false);
    sim.request(&vehicle(Sensor::Safety, SensorState::Fault))
        .await
        .unwrap();
    let next = lane.presence.next_event().await.unwrap();
    assert_eq!(
        next,
        SensorEvent {
            sensor: Sensor::Safety,
            state: SensorState::Fault
        }
    );
}

#[tokio::test]
async fn a_start_state_is_current_and_in_the_state_reply_but_sends_no_events() {
    let found = SensorStates {
        arming: SensorState::Fault,
        safety: SensorState::Occupied,
        barrier_up: SensorState::Occupied,
    };
    let mut lane = start_with(found);
    for sensor in Sensor::ALL {
        assert_eq!(lane.presence.current(sensor), found.get(sensor), "{sensor}");
    }
    let mut sim = lane.client().await;
    let reply = sim.request(&SimRequest::State).await.unwrap();
    assert_eq!(
        reply["state"]["sensors"],
        json!({"arming": "fault", "safety": "occupied", "barrier_up": "occupied"})
    );
    // The boom is up, so the last command the sim remembers is up.
    assert_eq!(reply["state"]["barrier"], "up");

    // The first event is the first change: the start state queued none.
    sim.request(&vehicle(Sensor::Safety, SensorState::Clear))
        .await
        .unwrap();
    assert_eq!(
        lane.presence.next_event().await.unwrap(),
        SensorEvent {
            sensor: Sensor::Safety,
            state: SensorState::Clear
        }
    );
}

#[tokio::test]
async fn a_boom_that_starts_up_stays_up_until_commanded_down() {
    let mut lane = start_with(SensorStates {
        barrier_up: SensorState::Occupied,
        ..SensorStates::default()
    });
    let mut watch = lane.client().await.watch().await.unwrap();
    // Raising a boom that is already up moves nothing; lowering it does.
    lane.barrier.command(BarrierCommand::Up).await.unwrap();
    lane.barrier.command(BarrierCommand::Down).await.unwrap();
    let dropped = SensorEvent {
        sensor: Sensor::BarrierUp,
        state: SensorState::Clear,
    };
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(watch.next().await.unwrap().unwrap());
    }
    assert_eq!(
        seen,
        vec![
            WatchLine::Out(SimOutput::Barrier {
                cmd: BarrierCommand::Up
            }),
            WatchLine::Out(SimOutput::Barrier {
                cmd: BarrierCommand::Down
            }),
            WatchLine::In(SimInput::Sensor(dropped)),
        ]
    );
    assert_eq!(lane.presence.next_event().await.unwrap(), dropped);
    let state = lane.client().await.state().await.unwrap();
    assert_eq!(state.barrier, BarrierCommand::Down);
    assert_eq!(state.sensors.barrier_up, SensorState::Clear);
}

#[tokio::test]
async fn a_faulted_switch_at_start_is_not_a_boom_that_is_up() {
    let mut lane = start_with(SensorStates {
        barrier_up: SensorState::Fault,
        ..SensorStates::default()
    });
    let state = lane.client().await.state().await.unwrap();
    assert_eq!(state.barrier, BarrierCommand::Down);
    assert_eq!(state.sensors.barrier_up, SensorState::Fault);
    lane.barrier.command(BarrierCommand::Up).await.unwrap();
    assert_eq!(
        lane.presence.next_event().await.unwrap(),
        SensorEvent {
            sensor: Sensor::BarrierUp,
            state: SensorState::Occupied
        }
    );
}

#[test]
fn a_start_state_names_only_the_inputs_that_are_not_clear() {
    let start: SensorStates = serde_json::from_str(r#"{"safety":"occupied"}"#).unwrap();
    assert_eq!(
        start,
        SensorStates {
            safety: SensorState::Occupied,
            ..SensorStates::default()
        }
    );
}

#[tokio::test]
async fn a_barrier_command_is_watched_and_moves_the_switch_when_following() {
    let mut lane = start();
    let mut watch = lane.client().await.watch().await.unwrap();
    lane.barrier.command(BarrierCommand::Up).await.unwrap();

    assert_eq!(
        watch.next().await.unwrap().unwrap(),
        WatchLine::Out(SimOutput::Barrier {
            cmd: BarrierCommand::Up
        })
    );
    let switched = SensorEvent {
        sensor: Sensor::BarrierUp,
        state: SensorState::Occupied,
    };
    assert_eq!(
        watch.next().await.unwrap().unwrap(),
        WatchLine::In(SimInput::Sensor(switched))
    );
    assert_eq!(lane.presence.next_event().await.unwrap(), switched);
    assert_eq!(
        lane.presence.current(Sensor::BarrierUp),
        SensorState::Occupied
    );

    let state = lane.client().await.state().await.unwrap();
    assert_eq!(state.barrier, BarrierCommand::Up);
    assert_eq!(state.sensors.barrier_up, SensorState::Occupied);
}

#[tokio::test]
async fn a_stuck_barrier_does_not_move_the_switch_but_can_be_forced() {
    let mut lane = start();
    let mut sim = lane.client().await;
    sim.request(&SimRequest::BarrierFollows { value: false })
        .await
        .unwrap();
    lane.barrier.command(BarrierCommand::Up).await.unwrap();
    let state = sim.state().await.unwrap();
    assert_eq!(state.barrier, BarrierCommand::Up);
    assert!(!state.barrier_follows);
    assert_eq!(state.sensors.barrier_up, SensorState::Clear);

    // Forcing the boom up by hand: the first presence event is this one, so
    // the command above produced none.
    sim.request(&vehicle(Sensor::BarrierUp, SensorState::Occupied))
        .await
        .unwrap();
    assert_eq!(
        lane.presence.next_event().await.unwrap(),
        SensorEvent {
            sensor: Sensor::BarrierUp,
            state: SensorState::Occupied
        }
    );
}

#[tokio::test]
async fn a_signal_is_watched_and_kept_in_the_state() {
    let mut lane = start();
    let mut watch = lane.client().await.watch().await.unwrap();
    let signal = Signal {
        light: Light::Green,
        buzzer: Buzz::Short,
        text: Some("Welcome Alice - spot B1-042".into()),
    };
    lane.feedback.show(&signal).await.unwrap();
    let line = watch.next_line().await.unwrap().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&line).unwrap(),
        json!({"out":"signal","light":"green","buzzer":"short","text":"Welcome Alice - spot B1-042"})
    );
    let state = lane.client().await.state().await.unwrap();
    assert_eq!(state.signal, signal);
}

#[tokio::test]
async fn a_watcher_sees_inputs_from_other_clients() {
    let lane = start();
    let mut watch = lane.client().await.watch().await.unwrap();
    let mut sim = lane.client().await;
    sim.request(&SimRequest::Tap {
        card: "04a1b2c3".into(),
    })
    .await
    .unwrap();
    sim.request(&SimRequest::Reader {
        online: false,
        reason: None,
    })
    .await
    .unwrap();
    assert_eq!(
        watch.next().await.unwrap().unwrap(),
        WatchLine::In(SimInput::Tap {
            card: "04A1B2C3".into()
        })
    );
    assert_eq!(
        watch.next().await.unwrap().unwrap(),
        WatchLine::In(SimInput::Reader {
            online: false,
            reason: Some("simulated: reader offline".into())
        })
    );
}

/// A toy gate written only against the traits, as the daemon will be: it
/// must compile as a spawned (Send) task for any backend.
async fn toy_gate<R, P, B, F>(mut reader: R, presence: P, mut barrier: B, mut feedback: F)
where
    R: CardReader + 'static,
    P: Presence + 'static,
    B: Barrier + 'static,
    F: Feedback + 'static,
{
    while let Ok(event) = reader.next_event().await {
        if let ReaderEvent::Card(card) = event
            && presence.current(Sensor::Arming) == SensorState::Occupied
        {
            barrier.command(BarrierCommand::Up).await.unwrap();
            let text = Some(format!("Welcome {card}"));
            feedback
                .show(&Signal {
                    light: Light::Green,
                    buzzer: Buzz::Short,
                    text,
                })
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn a_whole_arrival_played_from_a_client() {
    let Lane {
        _dir,
        path,
        reader,
        presence,
        barrier,
        feedback,
    } = start();
    tokio::spawn(toy_gate(reader, presence, barrier, feedback));
    let mut watch = SimClient::connect(&path)
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    let mut sim = SimClient::connect(&path).await.unwrap();
    sim.request(&vehicle(Sensor::Arming, SensorState::Occupied))
        .await
        .unwrap();
    sim.request(&SimRequest::Tap {
        card: "04A1B2C3".into(),
    })
    .await
    .unwrap();
    let mut seen = Vec::new();
    while let Some(line) = watch.next().await.unwrap() {
        let done = matches!(line, WatchLine::Out(SimOutput::Signal(_)));
        seen.push(line);
        if done {
            break;
        }
    }
    assert_eq!(
        seen,
        vec![
            WatchLine::In(SimInput::Sensor(SensorEvent {
                sensor: Sensor::Arming,
                state: SensorState::Occupied
            })),
            WatchLine::In(SimInput::Tap {
                card: "04A1B2C3".into()
            }),
            WatchLine::Out(SimOutput::Barrier {
                cmd: BarrierCommand::Up
            }),
            WatchLine::In(SimInput::Sensor(SensorEvent {
                sensor: Sensor::BarrierUp,
                state: SensorState::Occupied
            })),
            WatchLine::Out(SimOutput::Signal(Signal {
                light: Light::Green,
                buzzer: Buzz::Short,
                text: Some("Welcome 04A1B2C3".into())
            })),
        ]
    );
}

#[tokio::test]
async fn malformed_lines_get_an_error_reply_and_the_server_goes_on() {
    let lane = start();
    let mut sim = lane.client().await;
    for bad in [
        "not json",
        "{\"cmd\":\"fly\"}",
        "{\"cmd\":\"vehicle\",\"sensor\":\"roof\",\"state\":\"clear\"}",
        "[]",
        "",
    ] {
        let reply = sim.request_line(bad).await.unwrap();
        assert_eq!(reply["ok"], false, "{bad:?} -> {reply}");
        assert!(
            reply["error"].as_str().unwrap().starts_with("bad request"),
            "{reply}"
        );
    }
    // Bytes that are not UTF-8, written raw.
    let mut raw = tokio::net::UnixStream::connect(&lane.path).await.unwrap();
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    raw.write_all(b"{\"cmd\":\xff}\n").await.unwrap();
    let mut reply = String::new();
    tokio::io::BufReader::new(&mut raw)
        .read_line(&mut reply)
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&reply).unwrap(),
        json!({"ok": false, "error": "request is not UTF-8"})
    );
    // Both connections still work, and so does a new one.
    assert!(sim.state().await.is_ok());
    assert!(lane.client().await.state().await.is_ok());
}

#[tokio::test]
async fn a_client_that_stops_sending_gets_its_reply_and_a_watcher_keeps_watching() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut lane = start();

    // A last request without a newline, then end of input: one reply, then EOF.
    let mut once = tokio::net::UnixStream::connect(&lane.path).await.unwrap();
    once.write_all(b"{\"cmd\":\"barrier_follows\",\"value\":true}")
        .await
        .unwrap();
    once.shutdown().await.unwrap();
    let mut all = String::new();
    once.read_to_string(&mut all).await.unwrap();
    assert_eq!(all, "{\"ok\":true}\n");

    // `echo '{"cmd":"watch"}' | nc -U sim.sock` still sees what happens.
    let mut watcher = tokio::net::UnixStream::connect(&lane.path).await.unwrap();
    watcher.write_all(b"{\"cmd\":\"watch\"}\n").await.unwrap();
    watcher.shutdown().await.unwrap();
    let mut lines = tokio::io::BufReader::new(watcher);
    let mut line = String::new();
    use tokio::io::AsyncBufReadExt;
    lines.read_line(&mut line).await.unwrap();
    assert_eq!(line, "{\"ok\":true}\n");
    lane.barrier.command(BarrierCommand::Down).await.unwrap();
    line.clear();
    lines.read_line(&mut line).await.unwrap();
    assert_eq!(line, "{\"out\":\"barrier\",\"cmd\":\"down\"}\n");
}

#[tokio::test]
async fn reader_health_changes_are_events_and_an_offline_reader_reads_nothing() {
    let mut lane = start();
    let mut sim = lane.client().await;
    let reply = sim
        .request(&SimRequest::Reader {
            online: false,
            reason: Some("no answer on /dev/ttyAMA0".into()),
        })
        .await
        .unwrap();
    assert_eq!(reply["changed"], true);
    assert_eq!(
        lane.reader.next_event().await.unwrap(),
        ReaderEvent::Health(ReaderHealth::Offline("no answer on /dev/ttyAMA0".into()))
    );
    let err = sim
        .request(&SimRequest::Tap {
            card: "04A1B2C3".into(),
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("the reader is offline"), "{err}");
    assert!(!sim.state().await.unwrap().reader_online);

    sim.request(&SimRequest::Reader {
        online: true,
        reason: None,
    })
    .await
    .unwrap();
    // Health(Ok) comes next: the refused tap queued nothing.
    assert_eq!(
        lane.reader.next_event().await.unwrap(),
        ReaderEvent::Health(ReaderHealth::Ok)
    );
}

#[tokio::test]
async fn a_tap_with_no_one_reading_is_refused() {
    let Lane {
        _dir, path, reader, ..
    } = start();
    drop(reader);
    let mut sim = SimClient::connect(&path).await.unwrap();
    let err = sim
        .request(&SimRequest::Tap {
            card: "04A1B2C3".into(),
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nobody is reading"), "{err}");
}

#[tokio::test]
async fn bind_replaces_a_stale_socket_but_not_a_live_one_or_a_file() {
    let lane = start();
    let err = bind(&lane.path, SensorStates::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("another sim is listening"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists(), "a dropped std listener leaves its file");
    let parts = bind(&stale, SensorStates::default()).unwrap();
    tokio::spawn(parts.server.run());
    assert!(
        SimClient::connect(&stale)
            .await
            .unwrap()
            .state()
            .await
            .is_ok()
    );

    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    let err = bind(&file, SensorStates::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("is not a socket"), "{err}");
}

#[test]
fn the_documented_lines_are_the_protocol() {
    let requests = [
        (
            r#"{"cmd":"vehicle","sensor":"arming","state":"occupied"}"#,
            vehicle(Sensor::Arming, SensorState::Occupied),
        ),
        (
            r#"{"cmd":"tap","card":"04A1B2C3D4E5F6"}"#,
            SimRequest::Tap {
                card: "04A1B2C3D4E5F6".into(),
            },
        ),
        (
            r#"{"cmd":"tap_auth_failed","card":"04A1B2C3D4E5F6"}"#,
            SimRequest::TapAuthFailed {
                card: "04A1B2C3D4E5F6".into(),
            },
        ),
        (r#"{"cmd":"tap_corrupt"}"#, SimRequest::TapCorrupt),
        (
            r#"{"cmd":"reader","online":false,"reason":"no answer on /dev/ttyAMA0"}"#,
            SimRequest::Reader {
                online: false,
                reason: Some("no answer on /dev/ttyAMA0".into()),
            },
        ),
        (
            r#"{"cmd":"barrier_follows","value":false}"#,
            SimRequest::BarrierFollows { value: false },
        ),
        (r#"{"cmd":"state"}"#, SimRequest::State),
        (r#"{"cmd":"watch"}"#, SimRequest::Watch),
    ];
    for (text, request) in requests {
        assert_eq!(serde_json::from_str::<SimRequest>(text).unwrap(), request);
        assert_eq!(serde_json::to_string(&request).unwrap(), text);
    }
    let alias = r#"{"cmd":"sensor","sensor":"safety","state":"fault"}"#;
    assert_eq!(
        serde_json::from_str::<SimRequest>(alias).unwrap(),
        vehicle(Sensor::Safety, SensorState::Fault)
    );

    let lines = [
        (
            r#"{"out":"barrier","cmd":"up"}"#,
            WatchLine::Out(SimOutput::Barrier {
                cmd: BarrierCommand::Up,
            }),
        ),
        (
            r#"{"out":"lagged","missed":3}"#,
            WatchLine::Out(SimOutput::Lagged { missed: 3 }),
        ),
        (
            r#"{"in":"sensor","sensor":"arming","state":"occupied"}"#,
            WatchLine::In(SimInput::Sensor(SensorEvent {
                sensor: Sensor::Arming,
                state: SensorState::Occupied,
            })),
        ),
        (
            r#"{"in":"tap_corrupt"}"#,
            WatchLine::In(SimInput::TapCorrupt),
        ),
        (
            r#"{"in":"reader","online":true}"#,
            WatchLine::In(SimInput::Reader {
                online: true,
                reason: None,
            }),
        ),
    ];
    for (text, line) in lines {
        assert_eq!(serde_json::from_str::<WatchLine>(text).unwrap(), line);
        assert_eq!(serde_json::to_string(&line).unwrap(), text);
    }

    let state = SimSnapshot {
        sensors: SensorStates::default(),
        barrier: BarrierCommand::Down,
        barrier_follows: true,
        reader_online: true,
        signal: Signal::default(),
    };
    assert_eq!(
        serde_json::to_value(&state).unwrap(),
        json!({"sensors":{"arming":"clear","safety":"clear","barrier_up":"clear"},
               "barrier":"down","barrier_follows":true,"reader_online":true,
               "signal":{"light":"off","buzzer":"none","text":null}})
    );
}

#[cfg(feature = "cli")]
#[test]
fn the_cli_words_are_the_documented_requests() {
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        request: SimRequest,
    }
    Cli::command().debug_assert();
    let parse = |args: &[&str]| {
        Cli::try_parse_from(std::iter::once("sim").chain(args.iter().copied()))
            .map(|cli| cli.request)
    };
    let cases: [(&[&str], &str); 10] = [
        (
            &["vehicle", "arming", "occupied"],
            r#"{"cmd":"vehicle","sensor":"arming","state":"occupied"}"#,
        ),
        (
            &["vehicle", "barrier_up", "fault"],
            r#"{"cmd":"vehicle","sensor":"barrier_up","state":"fault"}"#,
        ),
        (
            &["tap", "04A1B2C3D4E5F6"],
            r#"{"cmd":"tap","card":"04A1B2C3D4E5F6"}"#,
        ),
        (
            &["tap-auth-failed", "04A1B2C3D4E5F6"],
            r#"{"cmd":"tap_auth_failed","card":"04A1B2C3D4E5F6"}"#,
        ),
        (&["tap-corrupt"], r#"{"cmd":"tap_corrupt"}"#),
        (
            &["reader", "offline", "--reason", "no answer on /dev/ttyAMA0"],
            r#"{"cmd":"reader","online":false,"reason":"no answer on /dev/ttyAMA0"}"#,
        ),
        (&["reader", "online"], r#"{"cmd":"reader","online":true}"#),
        (
            &["barrier-follows", "false"],
            r#"{"cmd":"barrier_follows","value":false}"#,
        ),
        (&["state"], r#"{"cmd":"state"}"#),
        (&["watch"], r#"{"cmd":"watch"}"#),
    ];
    for (args, line) in cases {
        let request = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(serde_json::to_string(&request).unwrap(), line, "{args:?}");
    }

    let error = |args: &[&str]| match parse(args) {
        Ok(request) => panic!("{args:?} parsed as {request:?}"),
        Err(e) => e.to_string(),
    };
    let e = error(&["vehicle", "roof", "clear"]);
    assert!(e.contains("valid: arming, safety, barrier_up"), "{e}");
    let e = error(&["vehicle", "arming", "parked"]);
    assert!(e.contains("valid: clear, occupied, fault"), "{e}");
    let e = error(&["reader", "true"]);
    assert!(e.contains("[possible values: online, offline]"), "{e}");
    error(&["barrier-follows", "stuck"]);
    error(&["tap"]);
    error(&["tap_corrupt"]);
}

// Bounded queues to the daemon. "Waits" is shown by polling the request's
// future once by hand: Pending while there is no room is deterministic (the
// room is a semaphore and a channel, nothing timed), and Ready on the next
// poll once the daemon side took an event. `guard` only turns a hang into a
// failure; nothing waits on a clock to synchronise.

/// Fails instead of hanging if `fut` never finishes.
async fn guard<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(std::time::Duration::from_secs(20), fut)
        .await
        .expect("did not finish in 20 s: waiting for room that never came?")
}

/// Polls once, outside tokio's cooperative budget (which could otherwise
/// make a future with room look like one waiting for it).
fn poll_once<F: Future>(fut: std::pin::Pin<&mut tokio::task::Unconstrained<F>>) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    fut.poll(&mut cx)
}

/// The output of `fut` if it is ready right now (an event already queued).
fn ready<F: Future>(fut: F) -> Option<F::Output> {
    match poll_once(pin!(unconstrained(fut))) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

/// The reader's next event, which must be queued already: a reply comes
/// only once its event is queued, so there is nothing to wait for.
fn next_read(reader: &mut SimReader) -> ReaderEvent {
    ready(reader.next_event())
        .expect("an event queued")
        .unwrap()
}

/// Presence's next edge, which must be queued already (see `next_read`).
fn next_edge(presence: &mut SimPresence) -> SensorEvent {
    ready(presence.next_event())
        .expect("an edge queued")
        .unwrap()
}

/// Every event the reader has queued now, taken.
fn take_reads(reader: &mut SimReader) -> Vec<ReaderEvent> {
    std::iter::from_fn(|| ready(reader.next_event()).map(Result::unwrap)).collect()
}

/// Every edge presence has queued now, taken.
fn take_edges(presence: &mut SimPresence) -> Vec<SensorEvent> {
    std::iter::from_fn(|| ready(presence.next_event()).map(Result::unwrap)).collect()
}

/// A distinct 4-byte card for each `i`.
fn card(i: usize) -> String {
    format!("{:08X}", 0x0400_0000 + i)
}

fn read_of(i: usize) -> ReaderEvent {
    ReaderEvent::Card(Credential::from_hex(&card(i)).unwrap())
}

async fn tap(sim: &mut SimClient, i: usize) -> Result<Value, HalError> {
    sim.request(&SimRequest::Tap { card: card(i) }).await
}

/// Taps READ_QUEUE cards (0..READ_QUEUE) that nobody reads: the queue is full.
async fn fill_reads(sim: &mut SimClient) {
    for i in 0..READ_QUEUE {
        tap(sim, i).await.unwrap();
    }
}

/// The arming loop's `i`-th toggle from clear: occupied, clear, occupied, ...
fn arming_toggle(i: usize) -> SensorEvent {
    let state = if i.is_multiple_of(2) {
        SensorState::Occupied
    } else {
        SensorState::Clear
    };
    SensorEvent {
        sensor: Sensor::Arming,
        state,
    }
}

/// Queues SENSOR_QUEUE arming edges that nobody takes: the client room is full.
async fn fill_edges(sim: &mut SimClient) {
    for i in 0..SENSOR_QUEUE {
        let edge = arming_toggle(i);
        let reply = sim
            .request(&vehicle(edge.sensor, edge.state))
            .await
            .unwrap();
        assert_eq!(reply["changed"], true);
    }
}

#[tokio::test]
async fn a_tap_that_finds_the_reader_queue_full_is_dropped_with_tap_again() {
    let mut lane = start();
    let mut watch = lane.client().await.watch().await.unwrap();
    let mut sim = lane.client().await;
    guard(fill_reads(&mut sim)).await;

    // Every kind of read is dropped, and the client is told to tap again.
    let refused = [
        tap(&mut sim, 100).await,
        sim.request(&SimRequest::TapAuthFailed { card: card(101) })
            .await,
        sim.request(&SimRequest::TapCorrupt).await,
    ];
    for reply in refused {
        let err = reply.unwrap_err();
        assert!(
            matches!(&err, HalError::Refused(m) if m.contains("queue is full") && m.contains("tap again")),
            "{err}"
        );
    }
    // Watchers saw the queued taps and then the marker: the dropped reads
    // were not echoed.
    lane.barrier.command(BarrierCommand::Down).await.unwrap();
    for i in 0..READ_QUEUE {
        let line = watch.next().await.unwrap().unwrap();
        assert_eq!(line, WatchLine::In(SimInput::Tap { card: card(i) }));
    }
    assert_eq!(
        watch.next().await.unwrap().unwrap(),
        WatchLine::Out(SimOutput::Barrier {
            cmd: BarrierCommand::Down
        })
    );

    // Taking one read makes room for exactly one more.
    assert_eq!(next_read(&mut lane.reader), read_of(0));
    tap(&mut sim, 200).await.unwrap();
    assert!(tap(&mut sim, 201).await.is_err(), "full again");
    for i in 1..READ_QUEUE {
        assert_eq!(next_read(&mut lane.reader), read_of(i));
    }
    // The one read taken in, and the dropped ones stay dropped.
    assert_eq!(take_reads(&mut lane.reader), [read_of(200)]);
}

#[tokio::test]
async fn health_changes_pass_a_full_read_queue_and_keep_their_place() {
    let mut lane = start();
    let mut sim = lane.client().await;
    guard(fill_reads(&mut sim)).await;

    let offline = SimRequest::Reader {
        online: false,
        reason: Some("no answer".into()),
    };
    let online = SimRequest::Reader {
        online: true,
        reason: None,
    };
    // Answered at once (the guard fails a request left waiting), and changed.
    let reply = guard(sim.request(&offline)).await.unwrap();
    assert_eq!(reply["changed"], true);
    let reply = guard(sim.request(&online)).await.unwrap();
    assert_eq!(reply["changed"], true);
    // The health changes took no read's place: reads are still full.
    assert!(tap(&mut sim, 100).await.is_err());

    // Reads come first, as they were made first; then the changes; then a
    // read made after the reader came back.
    assert_eq!(next_read(&mut lane.reader), read_of(0));
    tap(&mut sim, 200).await.unwrap();
    for i in 1..READ_QUEUE {
        assert_eq!(next_read(&mut lane.reader), read_of(i));
    }
    assert_eq!(
        next_read(&mut lane.reader),
        ReaderEvent::Health(ReaderHealth::Offline("no answer".into()))
    );
    assert_eq!(
        next_read(&mut lane.reader),
        ReaderEvent::Health(ReaderHealth::Ok)
    );
    assert_eq!(take_reads(&mut lane.reader), [read_of(200)]);
}

#[tokio::test]
async fn a_health_change_past_its_room_waits_and_is_not_lost() {
    let mut lane = start();
    let mut sim = lane.client().await;
    guard(fill_reads(&mut sim)).await;
    // HEALTH_ROOM changes fill the rest of the queue, all answered at once.
    for i in 0..HEALTH_ROOM {
        let request = SimRequest::Reader {
            online: i % 2 == 1,
            reason: Some(format!("flap {i}")),
        };
        guard(sim.request(&request)).await.unwrap();
    }
    assert!(
        sim.state().await.unwrap().reader_online,
        "an even number of flaps"
    );

    let shared = lane.presence.shared.clone();
    let mut no_watch = None;
    let line = br#"{"cmd":"reader","online":false,"reason":"one too many"}"#;
    let mut next = pin!(unconstrained(server::handle(&shared, line, &mut no_watch)));
    assert!(poll_once(next.as_mut()).is_pending(), "waits for room");
    assert!(poll_once(next.as_mut()).is_pending(), "still no room");
    assert!(shared.snapshot().reader_online, "not applied while waiting");

    assert_eq!(next_read(&mut lane.reader), read_of(0));
    let Poll::Ready(reply) = poll_once(next.as_mut()) else {
        panic!("still waiting after the daemon took an event");
    };
    assert_eq!(reply, json!({"ok": true, "changed": true}));

    let rest = take_reads(&mut lane.reader);
    let mut expected: Vec<ReaderEvent> = (1..READ_QUEUE).map(read_of).collect();
    expected.extend((0..HEALTH_ROOM).map(|i| {
        ReaderEvent::Health(if i % 2 == 1 {
            ReaderHealth::Ok
        } else {
            ReaderHealth::Offline(format!("flap {i}"))
        })
    }));
    expected.push(ReaderEvent::Health(ReaderHealth::Offline(
        "one too many".into(),
    )));
    assert_eq!(rest, expected);
}

#[tokio::test]
async fn a_sensor_change_past_the_queue_waits_for_the_daemon_and_is_not_lost() {
    let mut lane = start();
    let mut sim = lane.client().await;
    guard(fill_edges(&mut sim)).await;

    let shared = lane.presence.shared.clone();
    let mut no_watch = None;
    let line = br#"{"cmd":"vehicle","sensor":"safety","state":"occupied"}"#;
    let mut next = pin!(unconstrained(server::handle(&shared, line, &mut no_watch)));
    assert!(poll_once(next.as_mut()).is_pending(), "waits for room");
    assert!(poll_once(next.as_mut()).is_pending(), "still no room");
    // The input changes only once its edge has room: `current` and the
    // queue never disagree.
    assert_eq!(lane.presence.current(Sensor::Safety), SensorState::Clear);

    // The switch edge a barrier command makes does not wait (the daemon
    // awaits the command) and has room that clients cannot take.
    guard(lane.barrier.command(BarrierCommand::Up))
        .await
        .unwrap();

    assert_eq!(next_edge(&mut lane.presence), arming_toggle(0));
    let Poll::Ready(reply) = poll_once(next.as_mut()) else {
        panic!("still waiting after the daemon took an edge");
    };
    assert_eq!(reply, json!({"ok": true, "changed": true}));
    assert_eq!(lane.presence.current(Sensor::Safety), SensorState::Occupied);

    let rest = take_edges(&mut lane.presence);
    let mut expected: Vec<SensorEvent> = (1..SENSOR_QUEUE).map(arming_toggle).collect();
    expected.push(SensorEvent {
        sensor: Sensor::BarrierUp,
        state: SensorState::Occupied,
    });
    expected.push(SensorEvent {
        sensor: Sensor::Safety,
        state: SensorState::Occupied,
    });
    assert_eq!(rest, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensor_changes_from_many_clients_all_arrive_in_the_order_they_happened() {
    // One client per input, each cycling its input through every state, so
    // every request is an edge; together more than the queue holds.
    const PER_CLIENT: usize = 120;
    let cycle = [
        SensorState::Occupied,
        SensorState::Fault,
        SensorState::Clear,
    ];
    let mut lane = start();
    let mut watch = lane.client().await.watch().await.unwrap();
    let mut clients = tokio::task::JoinSet::new();
    for sensor in Sensor::ALL {
        let mut sim = lane.client().await;
        clients.spawn(async move {
            for i in 0..PER_CLIENT {
                let reply = sim.request(&vehicle(sensor, cycle[i % 3])).await.unwrap();
                assert_eq!(reply["changed"], true, "{sensor} #{i}");
            }
        });
    }
    let total = Sensor::ALL.len() * PER_CLIENT;
    assert!(total > SENSOR_QUEUE);

    // Take nothing until the queue is full, so the clients must wait.
    let mut watched = Vec::new();
    while watched.len() < SENSOR_QUEUE {
        if let WatchLine::In(SimInput::Sensor(edge)) = guard(watch.next()).await.unwrap().unwrap() {
            watched.push(edge);
        }
    }
    let mut taken = Vec::new();
    let all_sent = async {
        while let Some(done) = clients.join_next().await {
            done.expect("a client failed");
        }
    };
    let mut all_sent = pin!(all_sent);
    guard(async {
        loop {
            tokio::select! {
                edge = lane.presence.next_event() => taken.push(edge.unwrap()),
                () = &mut all_sent => break,
            }
        }
    })
    .await;
    // Every reply came after its edge was queued, so the rest is all there.
    taken.extend(take_edges(&mut lane.presence));
    while watched.len() < total {
        if let WatchLine::In(SimInput::Sensor(edge)) = guard(watch.next()).await.unwrap().unwrap() {
            watched.push(edge);
        }
    }

    // None lost, each client's in its order, and the queue order is the
    // order the inputs changed in (watchers are told under the same lock).
    assert_eq!(taken.len(), total);
    for sensor in Sensor::ALL {
        let states: Vec<SensorState> = taken
            .iter()
            .filter(|e| e.sensor == sensor)
            .map(|e| e.state)
            .collect();
        let sent: Vec<SensorState> = (0..PER_CLIENT).map(|i| cycle[i % 3]).collect();
        assert_eq!(states, sent, "{sensor}");
    }
    assert_eq!(taken, watched);
}

#[tokio::test]
async fn switch_edges_past_their_room_are_lost_but_the_switch_moves() {
    // What SWITCH_ROOM promises, and what happens to a consumer that breaks
    // the rule of taking sensor edges between barrier commands: the
    // command never waits, the switch moves, the extra edges are lost.
    // Clients fill their share first: otherwise switch edges may use it.
    let mut lane = start();
    guard(fill_edges(&mut lane.client().await)).await;
    // Up, down, up, ...: every command moves the switch, so makes an edge.
    let switch = |i: usize| {
        if i.is_multiple_of(2) {
            (BarrierCommand::Up, SensorState::Occupied)
        } else {
            (BarrierCommand::Down, SensorState::Clear)
        }
    };
    for i in 0..=SWITCH_ROOM {
        guard(lane.barrier.command(switch(i).0)).await.unwrap();
    }
    assert_eq!(
        lane.presence.current(Sensor::BarrierUp),
        switch(SWITCH_ROOM).1
    );
    let taken = take_edges(&mut lane.presence);
    let (clients, switched) = taken.split_at(SENSOR_QUEUE);
    assert!(clients.iter().all(|e| e.sensor == Sensor::Arming));
    let switched: Vec<SensorState> = switched.iter().map(|e| e.state).collect();
    let kept: Vec<SensorState> = (0..SWITCH_ROOM).map(|i| switch(i).1).collect();
    assert_eq!(switched, kept, "the last command's edge is lost");
}

#[tokio::test]
async fn with_nobody_taking_edges_a_change_still_applies_at_once() {
    let Lane {
        _dir,
        path,
        presence,
        ..
    } = start();
    let mut sim = SimClient::connect(&path).await.unwrap();
    guard(fill_edges(&mut sim)).await;
    // The queued edges go with the receiver, and with them their room.
    drop(presence);
    let reply = guard(sim.request(&vehicle(Sensor::Safety, SensorState::Occupied)))
        .await
        .unwrap();
    assert_eq!(reply["changed"], true);
    assert_eq!(
        sim.state().await.unwrap().sensors.safety,
        SensorState::Occupied
    );
}

#[tokio::test]
async fn stopping_the_server_ends_its_clients_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.sock");
    let parts = bind(&path, SensorStates::default()).unwrap();
    let server = tokio::spawn(parts.server.run());
    let mut client = SimClient::connect(&path).await.unwrap();
    let reply = client.request(&SimRequest::State).await.unwrap();
    assert_eq!(reply["ok"], true, "served while running");

    server.abort();
    assert!(server.await.unwrap_err().is_cancelled());
    let after = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        client.request(&SimRequest::State),
    )
    .await
    .expect("an answer or an error, not a hang");
    assert!(
        after.is_err(),
        "the connection ended with the server: {after:?}"
    );
    assert!(!path.exists(), "the socket file is gone");
}

#[tokio::test]
async fn a_stopping_server_hands_watchers_what_is_queued_then_closes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.sock");
    let mut parts = bind(&path, SensorStates::default()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(parts.server.run_until(async move {
        let _ = stopped.await;
    }));
    let mut watch = SimClient::connect(&path)
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();
    // The last commands, and at once the stop: nothing has been read yet.
    parts.barrier.command(BarrierCommand::Up).await.unwrap();
    parts.barrier.command(BarrierCommand::Down).await.unwrap();
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let mut barrier = Vec::new();
    while let Some(line) = watch.next().await.unwrap() {
        if let WatchLine::Out(SimOutput::Barrier { cmd }) = line {
            barrier.push(cmd);
        }
    }
    assert_eq!(barrier, [BarrierCommand::Up, BarrierCommand::Down]);
}
