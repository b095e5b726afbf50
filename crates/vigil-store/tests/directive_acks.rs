//! A child acknowledges a directive only for itself and the nodes below it
//! (docs/ARCHITECTURE.md#directives): the nodes an acknowledgement says the directive was
//! passed to (`relayed_to`) count only when their binding here was reported through that
//! child — none for a gateway — and a list past [`MAX_RELAYED_TO`] is refused whole. A leaf
//! gateway X cannot name its sibling Y there and then acknowledge in Y's name (Y's genuine
//! acknowledgement would be dropped as a duplicate: the first wins on (directive, node)).

use vigil_core::{EventId, Lane, NodeId, SitePath, Timestamp};
use vigil_store::{
    AuditEntry, Handling, InboundBatch, InboundDirectives, NodeKind, ReportedBinding, Store,
    MAX_RELAYED_TO,
};
use vigil_wire::{Directive, DirectiveAck, DirectiveBody, DirectiveOutcome, DirectiveRecord};

fn node(id: &str) -> NodeId {
    NodeId::new(id).expect("valid")
}

fn audit(action: &str) -> AuditEntry {
    AuditEntry {
        at: Timestamp::from_millis(1_000),
        node: "county".into(),
        actor: "sup".into(),
        action: action.into(),
        target: "d".into(),
        details: serde_json::Value::Null,
    }
}

fn ack(d: &Directive, of: &str, outcome: DirectiveOutcome, relayed: &[&str]) -> DirectiveAck {
    DirectiveAck {
        directive: d.id,
        node: node(of),
        outcome,
        reason: None,
        at: Timestamp::from_millis(2_000),
        relayed_to: relayed.iter().map(|n| node(n)).collect(),
    }
}

fn send(store: &mut Store, peer: &NodeId, first_seq: u64, records: &[DirectiveRecord]) {
    let batch = InboundBatch {
        peer,
        lane: Lane::Critical,
        first_seq,
        events: &[],
        audit: &[],
        bodies: None,
        directives: InboundDirectives::FromChild(records),
    };
    store
        .apply_batches_and_forward(&[batch], None, |_, _| None)
        .expect("apply");
}

fn directive() -> Directive {
    Directive {
        id: EventId::from_bytes([7; 16]),
        origin: node("county"),
        target: SitePath::new("m/p/c/county").expect("valid"),
        actor: "sup".into(),
        issued_at: Timestamp::from_millis(1_000),
        deadline: Timestamp::from_millis(61_000),
        body: DirectiveBody::Posture {
            until: Timestamp::from_millis(3_600_000),
        },
    }
}

/// A county store that issued `directive()` and passed it to `children`: gateways gw-x and
/// gw-y, hub child hub-h with gw-h1 and gw-h2 reported through it.
fn county(children: &[&str]) -> (Store, Directive) {
    let mut store = Store::open_in_memory().expect("open");
    let site = |s: &str| SitePath::new(s).expect("valid");
    store
        .bindings_sync_config_kinds(
            &[
                (node("gw-x"), site("m/p/c/x"), NodeKind::Gateway),
                (node("gw-y"), site("m/p/c/y"), NodeKind::Gateway),
                (node("hub-h"), site("m/p/c/h"), NodeKind::Hub),
            ],
            Timestamp::from_millis(1),
        )
        .expect("config");
    let reported: Vec<ReportedBinding> = ["gw-h1", "gw-h2"]
        .iter()
        .map(|n| ReportedBinding {
            node: node(n),
            site: site(&format!("m/p/c/h/{n}")),
            parent: node("hub-h"),
        })
        .collect();
    store
        .bindings_replace_reported(&node("hub-h"), &reported, Timestamp::from_millis(1))
        .expect("reported");
    let d = directive();
    assert!(store
        .directive_issue(&d, &audit("directive.issue"))
        .expect("issue"));
    let children: Vec<(NodeId, String)> = children
        .iter()
        .map(|c| (node(c), format!("child:{c}")))
        .collect();
    let handling = Handling {
        children: &children,
        ack: None,
        ack_link: None,
        audit: audit("directive.send"),
    };
    assert!(store.directive_handle(&d, &handling).expect("handle"));
    (store, d)
}

fn acks_of(store: &Store, d: &Directive, of: &str) -> Vec<vigil_store::StoredAck> {
    let view = store.directive(&d.id).expect("read").expect("there");
    view.acks
        .into_iter()
        .filter(|a| a.ack.node.as_str() == of)
        .collect()
}

#[test]
fn a_gateway_cannot_acknowledge_a_directive_for_its_sibling() {
    let (mut store, d) = county(&["gw-x", "gw-y"]);

    // X (a leaf gateway) claims it passed the directive to Y, then answers for Y.
    let x = node("gw-x");
    send(
        &mut store,
        &x,
        1,
        &[
            DirectiveRecord::Ack(ack(&d, "gw-x", DirectiveOutcome::Applied, &["gw-y"])),
            DirectiveRecord::Ack(ack(&d, "gw-y", DirectiveOutcome::Applied, &[])),
        ],
    );
    // Y's genuine acknowledgement: it could not apply it.
    let y = node("gw-y");
    send(
        &mut store,
        &y,
        1,
        &[DirectiveRecord::Ack(ack(
            &d,
            "gw-y",
            DirectiveOutcome::Failed,
            &[],
        ))],
    );

    let view = store.directive(&d.id).expect("read").expect("there");
    let for_y = view
        .acks
        .iter()
        .find(|a| a.ack.node == y)
        .expect("an acknowledgement for gw-y");
    assert_eq!(
        for_y.via,
        Some(y.clone()),
        "gw-y's acknowledgement must be its own, not one gw-x forged: {for_y:?}"
    );
    assert_eq!(for_y.ack.outcome, DirectiveOutcome::Failed);
}

#[test]
fn a_hub_child_acknowledges_for_the_nodes_of_its_subtree_only() {
    let (mut store, d) = county(&["hub-h", "gw-y"]);
    let h = node("hub-h");
    // H passed it to gw-h1 (its own) and, it says, to gw-y (not in its subtree).
    send(
        &mut store,
        &h,
        1,
        &[
            DirectiveRecord::Ack(ack(
                &d,
                "hub-h",
                DirectiveOutcome::Applied,
                &["gw-h1", "gw-y"],
            )),
            DirectiveRecord::Ack(ack(&d, "gw-h1", DirectiveOutcome::Applied, &[])),
            DirectiveRecord::Ack(ack(&d, "gw-y", DirectiveOutcome::Applied, &[])),
            // Not passed to gw-h2 (H did not say so): refused.
            DirectiveRecord::Ack(ack(&d, "gw-h2", DirectiveOutcome::Applied, &[])),
        ],
    );
    let own = acks_of(&store, &d, "hub-h");
    assert_eq!(own.len(), 1);
    assert_eq!(
        own[0].ack.relayed_to,
        [node("gw-h1")],
        "gw-y dropped from the list"
    );
    let h1 = acks_of(&store, &d, "gw-h1");
    assert_eq!(h1.len(), 1);
    assert_eq!(h1[0].via, Some(h.clone()));
    assert!(
        acks_of(&store, &d, "gw-y").is_empty(),
        "H answered for gw-y"
    );
    assert!(acks_of(&store, &d, "gw-h2").is_empty());
    // gw-y's own acknowledgement is taken.
    send(
        &mut store,
        &node("gw-y"),
        1,
        &[DirectiveRecord::Ack(ack(
            &d,
            "gw-y",
            DirectiveOutcome::Failed,
            &[],
        ))],
    );
    let y = acks_of(&store, &d, "gw-y");
    assert_eq!(y.len(), 1);
    assert_eq!(y[0].via, Some(node("gw-y")));
}

#[test]
fn an_acknowledgement_naming_too_many_nodes_is_refused_whole() {
    let (mut store, d) = county(&["hub-h"]);
    let mut long = ack(&d, "hub-h", DirectiveOutcome::Applied, &["gw-h1"]);
    long.relayed_to
        .extend((0..MAX_RELAYED_TO).map(|i| node(&format!("fake-{i}"))));
    send(&mut store, &node("hub-h"), 1, &[DirectiveRecord::Ack(long)]);
    assert!(acks_of(&store, &d, "hub-h").is_empty());
    // At the cap, the list is judged entry by entry.
    let mut at_cap = ack(&d, "hub-h", DirectiveOutcome::Applied, &["gw-h1"]);
    at_cap
        .relayed_to
        .extend((1..MAX_RELAYED_TO).map(|i| node(&format!("fake-{i}"))));
    send(
        &mut store,
        &node("hub-h"),
        2,
        &[DirectiveRecord::Ack(at_cap)],
    );
    // (Nodes not bound here at all are taken as below the hub child, as for events: their
    // bindings may not have come up yet.)
    let own = acks_of(&store, &d, "hub-h");
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].ack.relayed_to.len(), MAX_RELAYED_TO);
    assert_eq!(own[0].ack.relayed_to[0], node("gw-h1"));
}
