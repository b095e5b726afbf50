//! Directive records on the link (docs/ARCHITECTURE.md#directives): taken apart from a
//! batch's alert events and audit records, and committed with the batch in the transaction
//! that advances the inbox cursor (`vigil_store::directives`), so the batch's ack still means
//! "stored here".
//!
//! Directives are taken only from the parent (a downlink batch) and acknowledgements only
//! from a child (an uplink batch); the store refuses each the other way.

use vigil_core::{AlertEvent, Lane, NodeId};
use vigil_store::{ForwardOutcome, InboundBatch, InboundDirectives, Store, StoreError};
use vigil_wire::DirectiveRecord;

use crate::escalation::{apply_and_forward, apply_group, ForwardPolicy};

/// Commits a downlink batch from the parent `peer` — its alert events and its directive
/// records — and forwards what `forward`'s policy selects, in one transaction.
pub(crate) fn apply_downlink(
    store: &mut Store,
    peer: &NodeId,
    lane: Lane,
    first_seq: u64,
    events: &[AlertEvent],
    directives: &[DirectiveRecord],
    forward: Option<(&str, &ForwardPolicy)>,
) -> Result<ForwardOutcome, StoreError> {
    if directives.is_empty() {
        return apply_and_forward(store, peer, lane, first_seq, events, forward);
    }
    let batch = InboundBatch {
        peer,
        lane,
        first_seq,
        events,
        audit: &[],
        bodies: None,
        directives: InboundDirectives::FromParent(directives),
    };
    let mut outcomes = apply_group(store, &[batch], forward, None)?;
    Ok(outcomes.pop().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use vigil_core::{EventId, SitePath, Timestamp};
    use vigil_wire::{Directive, DirectiveBody};

    use super::*;

    #[test]
    fn a_downlink_batch_of_directives_is_stored_and_acknowledged_whole() {
        let mut store = Store::open_in_memory().expect("open");
        let parent = NodeId::new("county").expect("valid");
        let directive = Directive {
            id: EventId::from_bytes([3; 16]),
            origin: parent.clone(),
            target: SitePath::new("m/p/c/county").expect("valid"),
            actor: "sup".into(),
            issued_at: Timestamp::from_millis(1),
            deadline: Timestamp::from_millis(2),
            body: DirectiveBody::Order {
                text: "hold".into(),
            },
        };
        let records = [DirectiveRecord::Directive(directive.clone())];
        let out = apply_downlink(&mut store, &parent, Lane::Critical, 1, &[], &records, None)
            .expect("apply");
        assert_eq!(out.batch.ack_upto, 1);
        assert_eq!(
            store.directives_pending().expect("pending"),
            vec![directive]
        );
        // A resend is acknowledged again and stored once.
        let out = apply_downlink(&mut store, &parent, Lane::Critical, 1, &[], &records, None)
            .expect("resend");
        assert_eq!(out.batch.ack_upto, 1);
        assert_eq!(store.directives_pending().expect("pending").len(), 1);
    }
}
