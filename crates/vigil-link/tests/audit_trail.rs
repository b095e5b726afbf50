//! Audit records over the link, on the embedded broker with real stores: a child's audit
//! records — from before it had an uplink, and appended while it runs, between alert events
//! of the same lane — reach the parent exactly once, through a child crash (SIGKILL-like
//! abort), a parent restart (in-flight batches resent) and a broker restart; the parent's copy
//! verifies.

mod common;

use common::{
    assert_exactly_once, bounded, init_tracing, metric, node, open, wait_until, BrokerKind, Child,
    Dirs, Parent, TestBroker,
};
use serde_json::json;
use vigil_core::{Lane, Timestamp};
use vigil_link::metrics::names;
use vigil_store::{AuditEntry, AuditForward, AuditReport};

fn entry(n: u64) -> AuditEntry {
    AuditEntry {
        at: Timestamp::from_millis(1_795_000_000_000 + i64::try_from(n).expect("small")),
        node: "gw-1".into(),
        actor: "vigil-agent".into(),
        action: "update.refuse".into(),
        target: format!("bundle-{n}"),
        details: json!({ "reason": "signature does not verify", "n": n }),
    }
}

/// Appends records `range` to the child's audit log (each queued on `parent` with it).
async fn audit(child: &Child, range: std::ops::RangeInclusive<u64>) {
    child
        .store
        .call(move |s| {
            for n in range {
                s.audit_append(&entry(n))?;
            }
            Ok(())
        })
        .await
        .expect("append");
    child.poke.poke();
}

fn held(parent: &Parent) -> u64 {
    match parent
        .store
        .lock()
        .audit_remote_verify("gw-1")
        .expect("verify")
    {
        AuditReport::Intact { records, .. } => records,
        broken => panic!("the parent's copy does not verify: {broken}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_reach_the_parent_exactly_once_through_restarts() {
    bounded(async {
        init_tracing();
        let mut broker = TestBroker::start(BrokerKind::Embedded);
        let dirs = Dirs::new();
        let child_db = dirs.db("gw-1");
        let parent_db = dirs.db("parent");

        // Three records from before the gateway had an uplink.
        {
            let store = open(&child_db);
            let mut s = store.lock();
            for n in 1..=3 {
                s.audit_append(&entry(n)).expect("append");
            }
        }
        let start_forwarding = |store: &vigil_link::SharedStore| {
            store
                .lock()
                .set_audit_forward(Some(&AuditForward {
                    link: "parent".into(),
                    origin: node("gw-1"),
                }))
                .expect("forward")
        };

        let mut parent = Parent::start(&broker.url(), &parent_db);
        let mut child = Child::start("gw-1", &broker.url(), &child_db);
        assert_eq!(start_forwarding(&child.store), 3);
        let mut sent = child.record(50, Lane::Normal).await;
        audit(&child, 4..=10).await;
        sent.extend(child.record(50, Lane::Normal).await);
        let mut delivered = parent.collect(100).await;
        wait_until("ten audit records at the parent", || held(&parent) == 10).await;

        // The child dies with records queued; on restart the mark is already past them.
        audit(&child, 11..=20).await;
        let store = child.kill().await;
        drop(store);
        let mut child = Child::start("gw-1", &broker.url(), &child_db);
        assert_eq!(
            start_forwarding(&child.store),
            0,
            "queued once, with the append"
        );
        wait_until("twenty audit records at the parent", || held(&parent) == 20).await;

        // The parent goes away with batches in flight; they are resent to the new one.
        parent.stop().await;
        audit(&child, 21..=30).await;
        sent.extend(child.record(20, Lane::Normal).await);
        parent = Parent::start(&broker.url(), &parent_db);
        delivered.extend(parent.collect(20).await);
        wait_until("thirty audit records at the parent", || held(&parent) == 30).await;

        // The broker restarts mid-stream.
        broker.down();
        audit(&child, 31..=40).await;
        broker.up();
        wait_until("forty audit records at the parent", || held(&parent) == 40).await;
        wait_until("the child's outbox to be acknowledged", || {
            child.backlog() == 0
        })
        .await;

        assert_exactly_once(&delivered, &sent);
        {
            let store = parent.store.lock();
            assert_eq!(store.audit_remote_origins().expect("origins"), ["gw-1"]);
            assert_eq!(store.audit_remote_breaks().expect("breaks"), 0);
        }
        // The child's own head is the parent's copy's head.
        let child_head = child.store.lock().audit_head().expect("head");
        let AuditReport::Intact { head, .. } = parent
            .store
            .lock()
            .audit_remote_verify("gw-1")
            .expect("verify")
        else {
            panic!("intact");
        };
        assert_eq!(head, child_head);
        assert_eq!(
            metric(
                &parent.registry,
                names::AUDIT_CHAIN_BREAKS,
                &[("link", "child:gw-1")]
            ),
            0.0
        );
        assert!(metric(&child.registry, names::AUDIT_SENT, &[]) >= 10.0);
        child.stop().await;
        parent.stop().await;
    })
    .await;
}

/// The mismatch counter of `kind` at `parent`.
fn mismatches(parent: &Parent, kind: &str) -> f64 {
    metric(
        &parent.registry,
        names::AUDIT_TRAIL_MISMATCHES,
        &[("kind", kind)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_whose_log_was_cut_behind_the_parents_copy_is_found_from_its_status() {
    bounded(async {
        init_tracing();
        let broker = TestBroker::start(BrokerKind::Embedded);
        let dirs = Dirs::new();
        let child_db = dirs.db("gw-1");
        let parent_db = dirs.db("parent");
        let forwarding = AuditForward {
            link: "parent".into(),
            origin: node("gw-1"),
        };
        let parent = Parent::start(&broker.url(), &parent_db);
        let child = Child::start("gw-1", &broker.url(), &child_db);
        child
            .store
            .lock()
            .set_audit_forward(Some(&forwarding))
            .expect("forward");
        audit(&child, 1..=5).await;
        wait_until("five audit records at the parent", || held(&parent) == 5).await;
        // The child's statuses (one a second) report a tail in step with the copy.
        wait_until("the child's log acknowledged", || child.backlog() == 0).await;
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        assert_eq!(mismatches(&parent, "behind"), 0.0, "in step: nothing found");
        child.stop().await;

        // Someone with the gateway's disk removes its last two records.
        {
            let conn = rusqlite::Connection::open(&child_db).expect("open raw");
            conn.execute_batch(
                "DROP TRIGGER IF EXISTS audit_no_delete; DELETE FROM audit WHERE seq > 3;",
            )
            .expect("cut the tail");
        }
        let child = Child::start("gw-1", &broker.url(), &child_db);
        assert_eq!(child.store.lock().audit_head().expect("head").seq, 3);
        // The chain that is left verifies on its own; only the parent's copy shows the cut.
        assert!(matches!(
            child.store.lock().audit_verify().expect("verify"),
            AuditReport::Intact { records: 3, .. }
        ));
        wait_until("the cut found from the child's status", || {
            mismatches(&parent, "behind") == 1.0
        })
        .await;
        assert_eq!(
            metric(
                &parent.registry,
                names::AUDIT_TRAIL_MISMATCHED_CHILDREN,
                &[]
            ),
            1.0
        );
        // Counted once when found, not at every status that follows.
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        assert_eq!(mismatches(&parent, "behind"), 1.0);
        // A finding about the child, once (docs/ARCHITECTURE.md#site-bindings-and-admission).
        let mut parent = parent;
        let finding = parent.findings.try_recv().expect("a finding");
        assert_eq!(finding.child.as_str(), "gw-1");
        assert_eq!(finding.reason, vigil_link::FindingReason::AuditBehind);
        assert!(finding.detail.contains("ends at record 3"), "{finding:?}");
        assert!(parent.findings.try_recv().is_err(), "found once");
        child.stop().await;
        parent.stop().await;
    })
    .await;
}
