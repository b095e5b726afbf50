//! Crash durability: a child process writes to a store and reports each commit on stdout
//! only *after* the commit returned; the parent kills it with SIGKILL at a random moment,
//! reopens the file and checks that everything reported is there, exactly once.
//!
//! The child is this very test binary, re-executed with the test's name (`--exact`) and an
//! environment variable that selects child mode and the database file. A SIGKILL stops the
//! process between any two instructions, so what this proves is the crash-consistency of
//! SQLite's WAL plus our transaction boundaries. (`synchronous = FULL` is what extends it to
//! power loss; that needs a power cut to test, not a kill.)

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vigil_core::{AlertEvent, AlertId, AlertView, EventId, Hlc, Lane};
use vigil_store::Store;

/// Selects child mode: the name of the child to run.
const CHILD_ENV: &str = "VIGIL_STORE_CRASH_CHILD";
/// The database file the child writes.
const DB_ENV: &str = "VIGIL_STORE_CRASH_DB";
/// The child's random seed.
const SEED_ENV: &str = "VIGIL_STORE_CRASH_SEED";

/// Kill rounds per test.
const ROUNDS: usize = 24;
/// Rounds stop starting after this long (the machine may be loaded), keeping the test short.
const TIME_BUDGET: Duration = Duration::from_secs(20);
/// A child that is never killed stops by itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);
/// The most records one transaction of the outbox child appends.
const MAX_MANY: u64 = 20;
/// The most events one batch of the inbox child carries.
const MAX_BATCH: u64 = 16;

const LINK: &str = "parent";

fn lane_name(lane: Lane) -> &'static str {
    lane.as_str()
}

fn parse_lane(s: &str) -> Lane {
    match s {
        "critical" => Lane::Critical,
        "normal" => Lane::Normal,
        other => panic!("child reported an unknown lane {other:?}"),
    }
}

/// Which child to run, if this process is one.
fn child_mode(name: &str) -> Option<(PathBuf, u64)> {
    if std::env::var(CHILD_ENV).ok()? != name {
        return None;
    }
    let db = PathBuf::from(std::env::var(DB_ENV).expect("child needs the database path"));
    let seed = std::env::var(SEED_ENV)
        .expect("child needs a seed")
        .parse()
        .expect("numeric seed");
    Some((db, seed))
}

/// Runs `test` as a child writing `db`, kills it after a random 20–300 ms and returns the
/// complete lines it reported.
fn run_and_kill(test: &str, db: &Path, rng: &mut StdRng, scratch: &Path) -> Vec<String> {
    let stderr_path = scratch.join("child-stderr.txt");
    let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .env(DB_ENV, db)
        .env(SEED_ENV, rng.random::<u64>().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut lines = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                // A line cut short by the kill is not a report.
                Ok(_) if line.ends_with('\n') => lines.push(line.trim_end().to_owned()),
                Ok(_) => {}
            }
        }
        lines
    });
    std::thread::sleep(Duration::from_millis(rng.random_range(20..=300)));
    child.kill().expect("kill child");
    let status = child.wait().expect("wait for child");
    let lines = reader.join().expect("reader thread");
    assert_eq!(
        status.signal(),
        Some(9),
        "the child must die by SIGKILL, not by itself: {status}; stderr:\n{}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    lines
}

// ---------------------------------------------------------------------------------------
// The outbox under SIGKILL.

/// The payload of `seq` in `lane`: its length and bytes are a function of both, so a
/// record stored under the wrong number is caught.
fn payload_for(lane: Lane, seq: u64) -> Vec<u8> {
    let mut p = format!("{}:{seq};", lane_name(lane)).into_bytes();
    let len = 8 + (seq * 37 % 400) as usize;
    p.extend((0..len).map(|i| (seq.wrapping_mul(31).wrapping_add(i as u64) % 251) as u8));
    p
}

fn outbox_child(db: &Path, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut store = Store::open(db).expect("child opens the store");
    let mut head = [0u64; 2];
    let mut acked = [0u64; 2];
    for (i, lane) in Lane::ALL.into_iter().enumerate() {
        let state = store.outbox_lane_state(LINK, lane).expect("state");
        head[i] = state.head_seq;
        acked[i] = state.acked_upto;
    }
    let mut out = std::io::stdout().lock();
    let started = Instant::now();
    while started.elapsed() < CHILD_LIFETIME {
        let i = rng.random_range(0..2usize);
        let lane = Lane::ALL[i];
        let mut report = String::new();
        match rng.random_range(0..10) {
            0..=4 => {
                let seq = store
                    .outbox_append(LINK, lane, &payload_for(lane, head[i] + 1))
                    .expect("append");
                assert_eq!(seq, head[i] + 1, "sequence numbers are consecutive");
                head[i] = seq;
                report += &format!("APPEND {} {seq}\n", lane_name(lane));
            }
            5..=7 => {
                let n = rng.random_range(2..=MAX_MANY);
                let mut next = head;
                let lanes: Vec<usize> = (0..n).map(|_| rng.random_range(0..2usize)).collect();
                let items: Vec<(Lane, Vec<u8>)> = lanes
                    .iter()
                    .map(|&j| {
                        next[j] += 1;
                        (Lane::ALL[j], payload_for(Lane::ALL[j], next[j]))
                    })
                    .collect();
                let seqs = store.outbox_append_many(LINK, items).expect("append many");
                for (&j, seq) in lanes.iter().zip(seqs) {
                    assert_eq!(seq, head[j] + 1, "sequence numbers are consecutive");
                    head[j] = seq;
                    report += &format!("APPEND {} {seq}\n", lane_name(Lane::ALL[j]));
                }
            }
            _ => {
                if head[i] > acked[i] {
                    let upto = rng.random_range(acked[i] + 1..=head[i]);
                    store.outbox_ack(LINK, lane, upto).expect("ack");
                    acked[i] = upto;
                    report += &format!("ACK {} {upto}\n", lane_name(lane));
                }
            }
        }
        // Reported only now that the commit has returned; one write per transaction.
        out.write_all(report.as_bytes()).expect("report");
        out.flush().expect("flush report");
    }
}

#[test]
fn outbox_commits_survive_sigkill() {
    const NAME: &str = "outbox_commits_survive_sigkill";
    if let Some((db, seed)) = child_mode(NAME) {
        outbox_child(&db, seed);
        return;
    }
    let seed: u64 = rand::rng().random();
    eprintln!("{NAME}: seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("outbox.db");
    let started = Instant::now();
    // Per lane: the head found after the previous kill (the child must continue after it).
    let mut prev_head = [0u64; 2];
    let mut max_reported_ack = [0u64; 2];
    let (mut rounds, mut reported_total, mut acks_total) = (0, 0usize, 0usize);
    while rounds < ROUNDS && started.elapsed() < TIME_BUDGET {
        let lines = run_and_kill(NAME, &db, &mut rng, dir.path());
        rounds += 1;
        let mut reported: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        for line in &lines {
            let mut parts = line.split(' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("APPEND"), Some(lane), Some(seq)) => {
                    let i = lane_slot(parse_lane(lane));
                    reported[i].push(seq.parse().expect("numeric seq"));
                }
                (Some("ACK"), Some(lane), Some(upto)) => {
                    let i = lane_slot(parse_lane(lane));
                    let upto: u64 = upto.parse().expect("numeric upto");
                    assert!(upto > max_reported_ack[i], "acks only move forward");
                    max_reported_ack[i] = upto;
                    acks_total += 1;
                }
                _ => {} // the test harness's own output
            }
        }

        let store = Store::open(&db).expect("reopen after the kill");
        for lane in Lane::ALL {
            let i = lane_slot(lane);
            let ctx = format!("seed {seed} round {rounds} lane {lane}");
            let seqs = &reported[i];
            reported_total += seqs.len();
            if let Some(&first) = seqs.first() {
                assert!(
                    first > prev_head[i],
                    "{ctx}: seq {first} reused (head was {})",
                    prev_head[i]
                );
            }
            assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "{ctx}: strictly increasing"
            );

            let state = store.outbox_lane_state(LINK, lane).expect("state");
            let last_reported = seqs.last().copied().unwrap_or(prev_head[i]);
            assert!(
                state.head_seq >= last_reported,
                "{ctx}: reported seq lost: {state:?}"
            );
            assert!(
                state.head_seq <= last_reported + MAX_MANY,
                "{ctx}: more than one unreported transaction: {state:?}, last reported {last_reported}"
            );
            assert!(
                state.acked_upto >= max_reported_ack[i],
                "{ctx}: reported ack lost: {state:?}"
            );
            assert!(state.acked_upto <= state.head_seq, "{ctx}: {state:?}");

            let records = store
                .outbox_read(LINK, lane, 0, usize::MAX, usize::MAX)
                .expect("read all");
            let expected: Vec<u64> = (state.acked_upto + 1..=state.head_seq).collect();
            let got: Vec<u64> = records.iter().map(|r| r.seq).collect();
            assert_eq!(
                got, expected,
                "{ctx}: every unacknowledged seq exactly once"
            );
            for r in &records {
                assert_eq!(
                    r.payload,
                    payload_for(lane, r.seq),
                    "{ctx}: payload of seq {}",
                    r.seq
                );
            }
            assert_eq!(state.backlog_records, records.len() as u64, "{ctx}");
            assert_eq!(
                state.backlog_bytes,
                records.iter().map(|r| r.payload.len() as u64).sum::<u64>(),
                "{ctx}"
            );
            // Every reported seq is present, or deleted by an acknowledgement.
            for &s in seqs {
                if s > state.acked_upto {
                    assert!(
                        got.binary_search(&s).is_ok(),
                        "{ctx}: reported seq {s} missing"
                    );
                }
            }
            prev_head[i] = state.head_seq;
            max_reported_ack[i] = state.acked_upto.max(max_reported_ack[i]);
        }
    }
    eprintln!(
        "{NAME}: {rounds} rounds in {:?}, {reported_total} appends and {acks_total} acks reported",
        started.elapsed()
    );
    assert!(
        rounds >= 10,
        "too few rounds fit in the time budget: {rounds}"
    );
    assert!(
        reported_total > 100,
        "the children committed too little to test anything: {reported_total}"
    );
    assert!(
        acks_total > 5,
        "the children acknowledged too little: {acks_total}"
    );
}

const fn lane_slot(lane: Lane) -> usize {
    match lane {
        Lane::Critical => 0,
        Lane::Normal => 1,
    }
}

// ---------------------------------------------------------------------------------------
// The inbox under SIGKILL.

/// Alerts per lane the inbox stream spreads over.
const INBOX_ALERTS: u64 = 5;

fn inbox_event_id(lane: Lane, seq: u64) -> EventId {
    EventId::from_bytes(((lane_slot(lane) as u128 + 1) << 64 | u128::from(seq)).to_be_bytes())
}

fn inbox_alert(lane: Lane, n: u64) -> AlertId {
    common::alert_id(u128::from(lane_slot(lane) as u64 * INBOX_ALERTS + n))
}

/// The event the sender numbered `seq` in `lane`: stamps are scrambled within blocks of 8,
/// so arrival order is not fold order and the store must refold.
fn inbox_event(lane: Lane, seq: u64) -> AlertEvent {
    let mut e = common::stream_event(seq, INBOX_ALERTS, true);
    e.id = inbox_event_id(lane, seq);
    e.alert = inbox_alert(lane, seq % INBOX_ALERTS);
    e.hlc = Hlc::new(e.hlc.wall, lane_slot(lane) as u16);
    e
}

fn inbox_child(db: &Path, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut store = Store::open(db).expect("child opens the store");
    let peer = common::node("gw-7");
    let mut cursor = [0u64; 2];
    for (i, lane) in Lane::ALL.into_iter().enumerate() {
        cursor[i] = store.inbox_cursor(&peer, lane).expect("cursor");
    }
    let mut out = std::io::stdout().lock();
    let started = Instant::now();
    while started.elapsed() < CHILD_LIFETIME {
        let i = rng.random_range(0..2usize);
        let lane = Lane::ALL[i];
        let len = rng.random_range(1..=MAX_BATCH);
        let (first, gap) = match rng.random_range(0..10) {
            // A resend overlapping what is already here.
            0..=1 => (
                (cursor[i] + 1)
                    .saturating_sub(rng.random_range(1..=3))
                    .max(1),
                false,
            ),
            // A batch after a lost one.
            2 => (cursor[i] + 2 + rng.random_range(0..3), true),
            _ => (cursor[i] + 1, false),
        };
        let events: Vec<AlertEvent> = (first..first + len).map(|s| inbox_event(lane, s)).collect();
        let outcome = store
            .apply_batch(&peer, lane, first, &events)
            .expect("apply batch");
        assert_eq!(outcome.gap, gap, "gap detection");
        let expected = if gap {
            cursor[i]
        } else {
            cursor[i].max(first + len - 1)
        };
        assert_eq!(outcome.ack_upto, expected, "ack");
        cursor[i] = outcome.ack_upto;
        out.write_all(format!("CURSOR {} {}\n", lane_name(lane), outcome.ack_upto).as_bytes())
            .expect("report");
        out.flush().expect("flush report");
    }
}

#[test]
fn inbox_cursor_and_events_agree_after_sigkill() {
    const NAME: &str = "inbox_cursor_and_events_agree_after_sigkill";
    if let Some((db, seed)) = child_mode(NAME) {
        inbox_child(&db, seed);
        return;
    }
    let seed: u64 = rand::rng().random();
    eprintln!("{NAME}: seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("inbox.db");
    let peer = common::node("gw-7");
    let started = Instant::now();
    let mut reported = [0u64; 2];
    let mut rounds = 0;
    while rounds < ROUNDS && started.elapsed() < TIME_BUDGET {
        let before_round = reported;
        let lines = run_and_kill(NAME, &db, &mut rng, dir.path());
        rounds += 1;
        for line in &lines {
            let mut parts = line.split(' ');
            if let (Some("CURSOR"), Some(lane), Some(upto)) =
                (parts.next(), parts.next(), parts.next())
            {
                let i = lane_slot(parse_lane(lane));
                let upto: u64 = upto.parse().expect("numeric cursor");
                assert!(upto >= reported[i], "cursors only move forward");
                reported[i] = upto;
            }
        }

        let store = Store::open(&db).expect("reopen after the kill");
        let mut total = 0;
        for lane in Lane::ALL {
            let i = lane_slot(lane);
            let ctx = format!("seed {seed} round {rounds} lane {lane}");
            let cursor = store.inbox_cursor(&peer, lane).expect("cursor");
            assert!(
                cursor >= reported[i],
                "{ctx}: reported cursor {} lost, have {cursor}",
                reported[i]
            );
            assert!(
                cursor <= reported[i] + MAX_BATCH,
                "{ctx}: more than one unreported batch: {cursor} vs {}",
                reported[i]
            );
            // Every event up to the cursor is here, as sent; none after it. The events of
            // this round (and one batch before) every round; all of them every few rounds,
            // through each alert's event list, which must be exactly its events up to the
            // cursor, and whose fold must be the stored view.
            let window_start = before_round[i].saturating_sub(MAX_BATCH).max(1);
            for seq in window_start..=cursor {
                let stored = store.event(inbox_event_id(lane, seq)).expect("read event");
                assert_eq!(stored, Some(inbox_event(lane, seq)), "{ctx}: event {seq}");
            }
            for seq in cursor + 1..=cursor + MAX_BATCH + 3 {
                assert_eq!(
                    store.event(inbox_event_id(lane, seq)).expect("read"),
                    None,
                    "{ctx}: event {seq} beyond the cursor"
                );
            }
            let full = rounds % 4 == 0 || rounds == ROUNDS;
            for n in 0..INBOX_ALERTS {
                let alert = inbox_alert(lane, n);
                let events = store.alert_events(alert).expect("alert events");
                let expected = (1..=cursor).filter(|s| s % INBOX_ALERTS == n);
                assert_eq!(
                    events.len(),
                    expected.clone().count(),
                    "{ctx}: alert {n} event count"
                );
                if full {
                    let mut want: Vec<AlertEvent> =
                        expected.map(|s| inbox_event(lane, s)).collect();
                    want.sort_by_key(AlertEvent::order_key);
                    assert!(
                        events == want,
                        "{ctx}: alert {n} events differ from those sent"
                    );
                }
                let view = store.alert(alert).expect("alert");
                if events.is_empty() {
                    assert_eq!(view, None, "{ctx}");
                } else {
                    assert_eq!(
                        view,
                        Some(AlertView::fold(alert, &events)),
                        "{ctx}: alert {n} view"
                    );
                }
            }
            total += cursor;
            reported[i] = cursor;
        }
        assert_eq!(
            store.event_count().expect("count"),
            total,
            "seed {seed} round {rounds}: each event exactly once"
        );
    }
    eprintln!(
        "{NAME}: {rounds} rounds in {:?}, cursors {reported:?}",
        started.elapsed()
    );
    assert!(
        rounds >= 10,
        "too few rounds fit in the time budget: {rounds}"
    );
    assert!(
        reported.iter().sum::<u64>() > 100,
        "the children applied too little: {reported:?}"
    );
}
