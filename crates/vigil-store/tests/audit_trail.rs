//! Audit trails travelling up: a node's audit records queued on its `parent` outbox with
//! their append (and the ones from before it had a parent, once), applied by the parent
//! exactly once into `audit_remote`, relayed further up in the same transaction, verified per
//! origin — and tampering with the parent's copy named by origin and record number.

use serde_json::json;
use vigil_core::{Lane, NodeId, Timestamp};
use vigil_store::{
    AuditEntry, AuditFault, AuditForward, AuditListCursor, AuditReport, InboundBatch, Store,
    TrailCheck,
};
use vigil_wire::{AuditEvent, LinkEvent};

fn node(id: &str) -> NodeId {
    NodeId::new(id).expect("valid")
}

fn entry(node: &str, n: u64) -> AuditEntry {
    AuditEntry {
        at: Timestamp::from_millis(1_795_000_000_000 + i64::try_from(n).expect("small") * 1000),
        node: node.into(),
        actor: format!("user-{n}"),
        action: "comment".into(),
        target: format!("alert-{n}"),
        // Key order and number formats must survive the trip: the hash is over this text.
        details: json!({ "z": 1.5e-7, "a": [1, "два"], "text": format!("note {n}") }),
    }
}

fn forward(origin: &str) -> AuditForward {
    AuditForward {
        link: "parent".into(),
        origin: node(origin),
    }
}

/// Every link event queued on `link`'s normal lane after `after`, with its number.
fn queued(store: &Store, link: &str, after: u64) -> Vec<(u64, LinkEvent)> {
    store
        .outbox_read(link, Lane::Normal, after, 10_000, usize::MAX)
        .expect("read")
        .into_iter()
        .map(|r| {
            (
                r.seq,
                serde_json::from_slice(&r.payload).expect("link event"),
            )
        })
        .collect()
}

fn audit_of(events: &[(u64, LinkEvent)]) -> Vec<AuditEvent> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            LinkEvent::Audit(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// Delivers `records` from `peer` as one batch numbered from `first_seq`, forwarding to
/// `forward_link`.
fn deliver(
    store: &mut Store,
    peer: &NodeId,
    first_seq: u64,
    records: &[AuditEvent],
    forward_link: Option<&str>,
) -> vigil_store::ForwardOutcome {
    let batch = InboundBatch {
        peer,
        lane: Lane::Normal,
        first_seq,
        events: &[],
        audit: records,
        bodies: None,
        directives: Default::default(),
    };
    store
        .apply_batches_and_forward(&[batch], forward_link, |_, _| None)
        .expect("apply")
        .remove(0)
}

fn broken(report: AuditReport) -> (u64, AuditFault) {
    match report {
        AuditReport::Broken { seq, fault } => (seq, fault),
        intact => panic!("expected a broken trail, got {intact}"),
    }
}

/// Raw SQL from someone who can write the parent's file.
fn tamper(path: &std::path::Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).expect("open raw");
    conn.execute_batch(&format!(
        "DROP TRIGGER IF EXISTS audit_remote_no_update;
         DROP TRIGGER IF EXISTS audit_remote_no_delete; {sql}"
    ))
    .expect("tamper");
}

#[test]
fn records_are_queued_with_their_append_and_the_backlog_once() {
    let mut child = Store::open_in_memory().expect("open");
    // Before the node has an uplink: nothing is queued.
    for n in 1..=3 {
        child.audit_append(&entry("gw-1", n)).expect("append");
    }
    assert!(queued(&child, "parent", 0).is_empty());
    // The binary starts with a parent: the three are queued, in order, once.
    assert_eq!(
        child
            .set_audit_forward(Some(&forward("gw-1")))
            .expect("set"),
        3
    );
    assert_eq!(
        child
            .set_audit_forward(Some(&forward("gw-1")))
            .expect("set"),
        0
    );
    // Every later append is queued in its own transaction.
    child.audit_append(&entry("gw-1", 4)).expect("append");
    let records = audit_of(&queued(&child, "parent", 0));
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert!(records.iter().all(|r| r.origin == node("gw-1")));
    assert_eq!(records[1].prev_hash, records[0].hash);
    assert_eq!(child.audit_forward().expect("setting").1, 4);
    // Forwarding off again: appends stay here until it is back on.
    child.set_audit_forward(None).expect("off");
    child.audit_append(&entry("gw-1", 5)).expect("append");
    assert_eq!(queued(&child, "parent", 0).len(), 4);
    assert_eq!(
        child.set_audit_forward(Some(&forward("gw-1"))).expect("on"),
        1
    );
    assert_eq!(queued(&child, "parent", 0).len(), 5);
}

#[test]
fn the_parent_holds_each_record_once_relays_it_and_names_tampering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Store::open_in_memory().expect("child");
    child
        .set_audit_forward(Some(&forward("gw-1")))
        .expect("set");
    for n in 1..=6 {
        child.audit_append(&entry("gw-1", n)).expect("append");
    }
    let records = audit_of(&queued(&child, "parent", 0));
    let gw = node("gw-1");

    let county_path = dir.path().join("county.db");
    let mut county = Store::open(&county_path).expect("county");
    county
        .set_audit_forward(Some(&forward("county-a")))
        .expect("set");
    // The first four, then a resend overlapping them and bringing the rest.
    let first = deliver(&mut county, &gw, 1, &records[..4], Some("parent"));
    assert_eq!((first.audit.applied, first.audit.duplicates), (4, 0));
    assert_eq!(first.batch.ack_upto, 4);
    let resend = deliver(&mut county, &gw, 3, &records[2..], Some("parent"));
    assert_eq!((resend.audit.applied, resend.audit.duplicates), (2, 2));
    assert_eq!(resend.batch.ack_upto, 6);
    assert_eq!(resend.audit.chain_breaks, 0);
    // Relayed up once each, in the commit: the city will hold gw-1's trail too.
    let relayed = audit_of(&queued(&county, "parent", 0));
    assert_eq!(relayed, records);
    // The county's own records travel beside them, as county-a's.
    county.audit_append(&entry("county-a", 1)).expect("append");
    let up = audit_of(&queued(&county, "parent", 0));
    assert_eq!(up.len(), 7);
    assert_eq!(up[6].origin, node("county-a"));

    assert_eq!(county.audit_remote_origins().expect("origins"), ["gw-1"]);
    assert!(matches!(
        county.audit_remote_verify("gw-1").expect("verify"),
        AuditReport::Intact { records: 6, .. }
    ));
    // The list: newest first over both logs, keyset-paged.
    let own = node("county-a");
    let page = county.audit_list(&own, None, None, 3).expect("list");
    assert_eq!(page.len(), 3);
    assert!(page.windows(2).all(|w| w[0].at >= w[1].at));
    let last = page.last().expect("page");
    let cursor: AuditListCursor = AuditListCursor {
        at: last.at.as_millis(),
        origin: last.origin.to_string(),
        seq: last.seq,
    }
    .to_string()
    .parse()
    .expect("cursor");
    let rest = county
        .audit_list(&own, None, Some(&cursor), 100)
        .expect("list");
    assert_eq!(page.len() + rest.len(), 7);
    let only = county
        .audit_list(&own, Some("county-a"), None, 100)
        .expect("list");
    assert_eq!(only.len(), 1);

    // The held copy is the anchor: an edit, a removal and a swap are each named.
    drop(county);
    tamper(
        &county_path,
        "UPDATE audit_remote SET actor = 'mallory' WHERE origin = 'gw-1' AND seq = 3",
    );
    let county = Store::open(&county_path).expect("reopen");
    assert_eq!(
        broken(county.audit_remote_verify("gw-1").expect("verify")),
        (3, AuditFault::HashMismatch)
    );
    drop(county);
    tamper(
        &county_path,
        "UPDATE audit_remote SET actor = 'user-3' WHERE origin = 'gw-1' AND seq = 3;
         DELETE FROM audit_remote WHERE origin = 'gw-1' AND seq = 2",
    );
    let county = Store::open(&county_path).expect("reopen");
    assert_eq!(
        broken(county.audit_remote_verify("gw-1").expect("verify")),
        (2, AuditFault::Missing { next: 3 })
    );
}

#[test]
fn a_reordered_record_is_named_and_a_break_is_counted_on_arrival() {
    let mut child = Store::open_in_memory().expect("child");
    child
        .set_audit_forward(Some(&forward("gw-1")))
        .expect("set");
    for n in 1..=5 {
        child.audit_append(&entry("gw-1", n)).expect("append");
    }
    let records = audit_of(&queued(&child, "parent", 0));
    let gw = node("gw-1");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("county.db");
    let mut county = Store::open(&path).expect("county");
    deliver(&mut county, &gw, 1, &records, None);
    drop(county);
    // Records 4 and 5 swapped.
    tamper(
        &path,
        "UPDATE audit_remote SET seq = 99 WHERE origin = 'gw-1' AND seq = 4;
         UPDATE audit_remote SET seq = 4 WHERE origin = 'gw-1' AND seq = 5;
         UPDATE audit_remote SET seq = 5 WHERE origin = 'gw-1' AND seq = 99;",
    );
    let county = Store::open(&path).expect("reopen");
    let (seq, fault) = broken(county.audit_remote_verify("gw-1").expect("verify"));
    assert_eq!(seq, 4);
    assert!(
        matches!(
            fault,
            AuditFault::PrevHashMismatch | AuditFault::HashMismatch
        ),
        "{fault}"
    );
    drop(county);

    // On arrival: a record edited on its way (or at its origin) is stored, counted, named.
    let mut other = Store::open_in_memory().expect("other");
    let mut forged = records.clone();
    forged[2].actor = "mallory".into();
    let out = deliver(&mut other, &gw, 1, &forged, None);
    assert_eq!((out.audit.applied, out.audit.chain_breaks), (5, 1));
    assert_eq!(other.audit_remote_breaks().expect("breaks"), 1);
    assert_eq!(
        broken(other.audit_remote_verify("gw-1").expect("verify")),
        (3, AuditFault::HashMismatch)
    );
    // A different record under a number already held: the held copy stays.
    let out = deliver(&mut other, &gw, 1, &records[2..3], None);
    assert_eq!((out.audit.duplicates, out.audit.conflicts), (1, 1));
}

#[test]
fn a_node_whose_log_is_behind_or_rewritten_is_told_apart_from_one_in_step() {
    let mut child = Store::open_in_memory().expect("child");
    child
        .set_audit_forward(Some(&forward("gw-1")))
        .expect("set");
    for n in 1..=5 {
        child.audit_append(&entry("gw-1", n)).expect("append");
    }
    let records = audit_of(&queued(&child, "parent", 0));
    let gw = node("gw-1");
    let mut county = Store::open_in_memory().expect("county");
    // Nothing held yet: whatever the node says is consistent.
    let head = child.audit_head().expect("head");
    let late = Timestamp::from_millis(1_795_000_100_000);
    assert_eq!(
        county
            .audit_remote_check("gw-1", head.seq, &head.hash, late)
            .expect("check"),
        TrailCheck::Consistent
    );
    deliver(&mut county, &gw, 1, &records, None);
    // In step: the node's tail is the copy's head.
    assert_eq!(
        county
            .audit_remote_check("gw-1", head.seq, &head.hash, late)
            .expect("check"),
        TrailCheck::Consistent
    );
    // Records another child sends under gw-1's name say nothing of gw-1's own log.
    let mut forged = records[4].clone();
    forged.seq = 9;
    deliver(&mut county, &node("gw-2"), 1, &[forged], None);
    assert_eq!(
        county
            .audit_remote_check("gw-1", head.seq, &head.hash, late)
            .expect("check"),
        TrailCheck::Consistent
    );
    // The node's log cut back to record 3 after record 5 was written (its status is later
    // than record 5): behind the copy.
    let third = &records[2];
    assert_eq!(
        county
            .audit_remote_check("gw-1", 3, &third.hash.0, late)
            .expect("check"),
        TrailCheck::Behind {
            held: 5,
            reported: 3
        }
    );
    // A status the node published before it wrote records 4 and 5 (a retained one, late):
    // not held against it.
    assert_eq!(
        county
            .audit_remote_check("gw-1", 3, &third.hash.0, third.at)
            .expect("check"),
        TrailCheck::Consistent
    );
    // Another record under number 5: rewritten.
    assert_eq!(
        county
            .audit_remote_check("gw-1", 5, &[7u8; 32], late)
            .expect("check"),
        TrailCheck::Forked { seq: 5 }
    );
    // An empty log, reported after records were written: behind.
    assert_eq!(
        county
            .audit_remote_check("gw-1", 0, &[0u8; 32], late)
            .expect("check"),
        TrailCheck::Behind {
            held: 5,
            reported: 0
        }
    );
    // Another node's trail is not this one's.
    assert_eq!(
        county
            .audit_remote_check("gw-2", 0, &[0u8; 32], late)
            .expect("check"),
        TrailCheck::Consistent
    );
}
