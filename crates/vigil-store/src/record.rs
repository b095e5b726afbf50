//! Recording local events that must travel over more than one link.
//!
//! An operator's action at a hub is one event that two peers need: the child whose subtree
//! raised the alert (so the action flows down to the gateway) and the parent (so upper levels
//! see it). [`Store::record_events_multi`] stores the events and appends each to every link it
//! names **in one transaction**: either every outbox has it, or none does and the event is not
//! stored either, so a crash can never leave an action that one side will never hear of.

use vigil_core::{AlertEvent, Lane};
use vigil_wire::LinkEvent;

use crate::error::{Result, SqlContext, StoreError};
use crate::events::apply_in;
use crate::outbox::append_in;
use crate::store::Store;

impl Store {
    /// Records events created on this node in one durable transaction: stores each in the
    /// event store (folding its alert; an event named by several items is stored once) and
    /// appends it, as a [`LinkEvent`], to the outbox of the link of each item, in the item's
    /// lane. Returns each item's sequence number in its link's lane, in item order.
    ///
    /// [`Store::record_events`] is the one-link case.
    pub fn record_events_multi(&mut self, items: &[(&str, Lane, AlertEvent)]) -> Result<Vec<u64>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // Encode first: nothing is written if one event cannot be encoded.
        let mut payloads = Vec::with_capacity(items.len());
        for (_, _, event) in items {
            let bytes = serde_json::to_vec(&LinkEvent::Alert(event.clone())).map_err(|source| {
                StoreError::Encode {
                    what: "a link event",
                    source,
                }
            })?;
            payloads.push(bytes);
        }
        // The links in order of first appearance, each with the indices of its items.
        let mut links: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, (link, _, _)) in items.iter().enumerate() {
            match links.iter_mut().find(|(l, _)| l == link) {
                Some((_, indices)) => indices.push(i),
                None => links.push((link, vec![i])),
            }
        }
        let events: Vec<AlertEvent> = items.iter().map(|(_, _, e)| e.clone()).collect();

        let (tx, mut views) = self.write_tx_views("begin recording local events")?;
        apply_in(&tx, &mut views, &events)?;
        let mut seqs = vec![0; items.len()];
        for (link, indices) in &links {
            let appended = append_in(
                &tx,
                link,
                indices
                    .iter()
                    .map(|&i| (items[i].1, payloads[i].as_slice())),
            )?;
            for (&i, seq) in indices.iter().zip(appended) {
                seqs[i] = seq;
            }
        }
        tx.commit().op("commit local events")?;
        views.commit();
        Ok(seqs)
    }
}
