//! The sim over a real Unix socket in a temporary directory. Every wait is on
//! a reply or a stream, never a sleep.

use serde_json::json;
use tempfile::TempDir;

use std::path::PathBuf;

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
