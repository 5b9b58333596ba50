use std::collections::{BTreeMap, VecDeque};

use proptest::prelude::*;

use super::*;

fn row(seq: u64) -> Stored {
    Stored {
        gate_seq: seq,
        type_name: "alert".into(),
        json: format!("{{\"gate_seq\":{seq}}}"),
    }
}

/// The store as the uplink sees it: events and their delivery marks.
#[derive(Default)]
struct Journal {
    delivered: BTreeMap<u64, bool>,
}

impl Journal {
    fn record(&mut self, n: u64) {
        let next = self.delivered.len() as u64 + 1;
        for seq in next..next + n {
            self.delivered.insert(seq, false);
        }
    }

    fn mark(&mut self, seqs: Vec<u64>) {
        for seq in seqs {
            self.delivered.insert(seq, true);
        }
    }

    fn run(&self, read: Read) -> Vec<Stored> {
        let rows = self.delivered.iter();
        match read {
            Read::Outbox { after, limit } => rows
                .filter(|&(&s, &d)| !d && s > after)
                .take(limit)
                .map(|(&s, _)| row(s))
                .collect(),
            Read::Journal { from, to, limit } => rows
                .filter(|&(&s, _)| (from..=to).contains(&s))
                .take(limit)
                .map(|(&s, _)| row(s))
                .collect(),
        }
    }
}

/// The uplink, a journal, and a client that pkids publishes in order.
struct World {
    up: Uplink,
    journal: Journal,
    /// Publishes handed to the client, pkid not yet given.
    client: VecDeque<u64>,
    /// On the wire: (pkid, seq).
    wire: Vec<(u16, u64)>,
    next_pkid: u16,
    /// Seqs published, per connection.
    published: Vec<Vec<u64>>,
}

impl World {
    fn new(window: usize) -> World {
        World {
            up: Uplink::new(window),
            journal: Journal::default(),
            client: VecDeque::new(),
            wire: Vec::new(),
            next_pkid: 1,
            published: Vec::new(),
        }
    }

    fn connect(&mut self) {
        self.client.clear();
        self.wire.clear();
        self.up.connected();
        self.published.push(Vec::new());
    }

    fn disconnect(&mut self) {
        self.client.clear();
        self.wire.clear();
        self.up.disconnected();
    }

    /// What the session does after every event: publish, mark, read.
    fn pump(&mut self) {
        loop {
            while let Some(row) = self.up.next_publish() {
                self.client.push_back(row.gate_seq);
                self.up.handed(Tag::Event(row.gate_seq));
                if let Some(p) = self.published.last_mut() {
                    p.push(row.gate_seq);
                }
            }
            let Some(read) = self.up.next_read() else {
                break;
            };
            self.journal.mark(self.up.take_delivered());
            let rows = self.journal.run(read);
            self.up.read(read, rows);
        }
    }

    /// The client sends what it was handed.
    fn send(&mut self) {
        while let Some(seq) = self.client.pop_front() {
            let pkid = self.next_pkid;
            self.next_pkid = self.next_pkid % 60_000 + 1;
            self.up.outgoing(pkid).unwrap();
            self.wire.push((pkid, seq));
        }
    }

    /// The broker acknowledges the `i`-th publish on the wire.
    fn ack(&mut self, i: usize) {
        if self.wire.is_empty() {
            return;
        }
        let (pkid, seq) = self.wire.remove(i % self.wire.len());
        assert_eq!(self.up.acked(pkid), Some(Tag::Event(seq)));
    }

    fn settle(&mut self) {
        for _ in 0..10_000 {
            self.pump();
            self.send();
            if self.wire.is_empty() && self.up.next_read().is_none() {
                break;
            }
            while !self.wire.is_empty() {
                self.ack(0);
            }
        }
        self.journal.mark(self.up.take_delivered());
    }
}

#[test]
fn a_backlog_drains_in_order_within_the_window() {
    let mut w = World::new(4);
    w.journal.record(10);
    w.connect();
    w.pump();
    assert_eq!(w.published[0], [1, 2, 3, 4], "no more than the window");
    w.send();
    w.ack(1); // seq 2 first: acks may come in any order
    w.pump();
    assert_eq!(w.published[0], [1, 2, 3, 4, 5]);
    w.settle();
    assert_eq!(w.published[0], (1..=10).collect::<Vec<_>>());
    assert!(w.journal.delivered.values().all(|&d| d));
}

#[test]
fn a_new_connection_resends_everything_unacknowledged_in_order() {
    let mut w = World::new(8);
    w.journal.record(6);
    w.connect();
    w.pump();
    w.send();
    w.ack(2); // seq 3 delivered, nothing else
    w.disconnect();
    w.journal.record(1);
    w.up.more_events();
    w.connect();
    w.settle();
    assert_eq!(w.published[1], [1, 2, 4, 5, 6, 7]);
}

#[test]
fn nothing_is_read_or_published_while_disconnected() {
    let mut w = World::new(8);
    w.journal.record(3);
    assert_eq!(w.up.next_read(), None);
    assert!(w.up.next_publish().is_none());
}

#[test]
fn a_replay_goes_first_and_pages_through_its_range() {
    let mut w = World::new(2000);
    w.journal.record(2000);
    w.connect();
    w.settle();
    assert!(w.up.replay(100, 1300));
    w.settle();
    let replayed = &w.published[0][2000..];
    assert_eq!(replayed, (100..=1300).collect::<Vec<_>>());
    assert_eq!(w.up.next_read(), None, "the replay is done");
}

#[test]
fn replay_requests_are_bounded() {
    let mut up = Uplink::new(10);
    for i in 0..MAX_REPLAYS as u64 {
        assert!(up.replay(i, i));
    }
    assert!(up.replay(0, 0), "a repeated request is already queued");
    assert!(!up.replay(99, 99));
}

#[derive(Debug, Clone)]
enum Step {
    Record(u64),
    Connect,
    Disconnect,
    Pump,
    Send,
    Ack(usize),
    Replay(u64, u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1..20u64).prop_map(Step::Record),
        Just(Step::Connect),
        Just(Step::Disconnect),
        Just(Step::Pump),
        Just(Step::Send),
        (0..50usize).prop_map(Step::Ack),
        (1..60u64, 0..20u64).prop_map(|(a, n)| Step::Replay(a, a + n)),
    ]
}

proptest! {
    #![proptest_config(crate::domain::lane::proptests::cases(256))]

    /// Whatever the connection does, each connection publishes the outbox
    /// in increasing order (replays aside), and once a connection stays up
    /// every event is delivered.
    #[test]
    fn every_event_is_delivered_in_order(window in 1..20usize, steps in prop::collection::vec(step(), 1..80)) {
        let mut w = World::new(window);
        let mut replaying = false;
        for s in steps {
            match s {
                Step::Record(n) => { w.journal.record(n); w.up.more_events(); }
                Step::Connect => { w.disconnect(); w.connect(); }
                Step::Disconnect => w.disconnect(),
                Step::Pump => w.pump(),
                Step::Send => w.send(),
                Step::Ack(i) => w.ack(i),
                Step::Replay(a, b) => { replaying |= w.up.replay(a, b); }
            }
        }
        w.disconnect();
        w.connect();
        w.settle();
        prop_assert!(w.journal.delivered.values().all(|&d| d), "all delivered");
        if !replaying {
            for p in &w.published {
                prop_assert!(p.windows(2).all(|x| x[0] < x[1]), "in order: {p:?}");
            }
        }
    }
}
