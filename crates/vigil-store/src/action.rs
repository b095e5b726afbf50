//! Recording an operator action with its audit record: the action's event (stored and
//! folded), its place in each outbox that carries it, and the audit record saying who did
//! it, in **one transaction**. Either the action happened and is audited, or neither: an
//! action can never escape the audit log, and the log never names an action that was not
//! taken.

use vigil_core::{AlertEvent, Lane};

use crate::audit::{self, AuditEntry, AuditRecord};
use crate::error::{Result, SqlContext};
use crate::events::{apply_in, link_payload};
use crate::outbox::append_in;
use crate::store::Store;

impl Store {
    /// Stores `event` (folding its alert), appends it as a link event to each of `links` (the
    /// link and the lane), and appends `audit` to the audit log, all in one durable
    /// transaction. Returns the event's sequence number in each link's lane, in `links`
    /// order, and the audit record.
    pub fn record_action(
        &mut self,
        event: &AlertEvent,
        links: &[(&str, Lane)],
        audit: &AuditEntry,
    ) -> Result<(Vec<u64>, AuditRecord)> {
        // Encode first: nothing is written if the event cannot be encoded.
        let payload = link_payload(event)?;
        let (tx, mut views) = self.write_tx_views("begin recording an operator action")?;
        apply_in(&tx, &mut views, std::slice::from_ref(event))?;
        let mut seqs = Vec::with_capacity(links.len());
        for (link, lane) in links {
            seqs.extend(append_in(&tx, link, [(*lane, payload.as_slice())])?);
        }
        let record = audit::append_in(&tx, audit)?;
        tx.commit().op("commit an operator action")?;
        views.commit();
        Ok((seqs, record))
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::{
        Actor, AlertEventBody, AlertId, EventId, Hlc, NodeId, Severity, SitePath, Timestamp,
    };

    use super::*;
    use crate::audit::AuditReport;

    #[test]
    fn the_event_its_outboxes_and_its_audit_record_commit_together() {
        let mut store = Store::open_in_memory().expect("open");
        let alert = AlertId::generate();
        let raise = AlertEvent {
            id: EventId::generate(),
            alert,
            origin: NodeId::new("gw-1").expect("node"),
            hlc: Hlc::new(1_795_000_000_000, 0),
            actor: Actor::System,
            body: AlertEventBody::Raised {
                key: "gw-1/door-3/forced/state".parse().expect("key"),
                site: SitePath::new("ministry/gd").expect("site"),
                severity: Severity::Critical,
                message: "door forced".into(),
                value: None,
                at: Timestamp::from_millis(1_795_000_000_000),
                latching: false,
                zone: None,
                evidence: Vec::new(),
            },
            clamped_from: None,
        };
        store.apply_events(&[raise]).expect("raise");
        let ack = AlertEvent {
            id: EventId::generate(),
            alert,
            origin: NodeId::new("county-baiyun").expect("node"),
            hlc: Hlc::new(1_795_000_000_001, 0),
            actor: Actor::User("alice".into()),
            body: AlertEventBody::Acknowledged { comment: None },
            clamped_from: None,
        };
        let entry = AuditEntry {
            at: Timestamp::from_millis(1_795_000_000_001),
            node: "county-baiyun".into(),
            actor: "alice".into(),
            action: "ack".into(),
            target: alert.to_string(),
            details: serde_json::json!({}),
        };
        let (seqs, record) = store
            .record_action(
                &ack,
                &[("parent", Lane::Critical), ("child:gw-1", Lane::Critical)],
                &entry,
            )
            .expect("record");
        assert_eq!(seqs, vec![1, 1]);
        assert_eq!(record.seq, 1);
        assert!(
            store
                .alert(alert)
                .expect("view")
                .expect("alert")
                .acknowledged
        );
        assert!(matches!(
            store.audit_verify().expect("verify"),
            AuditReport::Intact { records: 1, .. }
        ));
        // A failing audit append rolls the action back.
        store
            .conn
            .execute_batch("DROP TABLE audit")
            .expect("drop audit");
        let comment = AlertEvent {
            id: EventId::generate(),
            hlc: Hlc::new(1_795_000_000_002, 0),
            body: AlertEventBody::Commented { text: "x".into() },
            ..ack
        };
        store
            .record_action(&comment, &[("parent", Lane::Critical)], &entry)
            .expect_err("no audit table");
        assert_eq!(store.event(comment.id).expect("read"), None);
        assert_eq!(
            store
                .outbox_lane_state("parent", Lane::Critical)
                .expect("lane")
                .head_seq,
            1
        );
        // Nor in the view the writer folds the next event into: it has no comment.
        let later = AlertEvent {
            id: EventId::generate(),
            hlc: Hlc::new(1_795_000_000_003, 0),
            body: AlertEventBody::Unshelved,
            ..comment
        };
        store.apply_events(&[later]).expect("apply");
        let stored = store.alert_events(alert).expect("events");
        assert_eq!(stored.len(), 3);
        let view = store.alert(alert).expect("view").expect("alert");
        assert_eq!(view, vigil_core::AlertView::fold(alert, &stored));
        assert_eq!(view.comments, 0);
    }
}
