//! The security review's reproductions (issue 11), as the admission rules' own tests
//! (docs/ARCHITECTURE.md#site-bindings-and-admission):
//!
//! - a compromised *leaf* gateway X cannot squat a node id up the tree by reporting a
//!   binding for it in its own status (a gateway reports none): when the genuine node Z
//!   later enrolls at a sibling county, the city takes that county's binding and Z's events;
//! - X cannot speak as its hub's ancestors (bound nowhere at the county): a raise whose
//!   origin and key are the city's, audit records under the city's id.

use std::collections::HashMap;

use vigil_core::{
    Actor, AlertEvent, AlertEventBody, AlertId, AlertKey, ConditionKind, EventId, Hlc, NodeId,
    Severity, SitePath, Timestamp,
};
use vigil_link::admission::{judge_reported, report, Judge};
use vigil_store::{AlertVia, BindingSource, NodeBinding, NodeKind, Store};
use vigil_wire::BindingStatus;
use vigil_wire::{AuditEvent, AuditHash};

fn id(s: &str) -> NodeId {
    NodeId::new(s).expect("node")
}

fn site(s: &str) -> SitePath {
    SitePath::new(s).expect("site")
}

fn held(store: &Store) -> HashMap<NodeId, NodeBinding> {
    store
        .node_bindings()
        .expect("bindings")
        .into_iter()
        .map(|b| (b.node.clone(), b))
        .collect()
}

/// `this` records what `child` reports, as the link engine does (judge, then replace).
fn record(store: &mut Store, this: &NodeId, child: &NodeId, reported: &[BindingStatus]) -> usize {
    let held = held(store);
    let child_site = held
        .get(child)
        .filter(|b| b.via.is_none())
        .map(|b| b.site.clone());
    let (accepted, refused) = judge_reported(this, child, child_site.as_ref(), &held, reported);
    store
        .bindings_replace_reported(child, &accepted, Timestamp::now())
        .expect("record");
    refused.len()
}

fn raise(origin: &str, at: &str) -> AlertEvent {
    AlertEvent {
        id: EventId::generate(),
        alert: AlertId::generate(),
        origin: id(origin),
        hlc: Hlc::new(1, 0),
        actor: Actor::System,
        body: AlertEventBody::Raised {
            key: AlertKey::new(
                id(origin),
                "fence",
                ConditionKind::new("alarm").expect("kind"),
            )
            .expect("key"),
            site: site(at),
            severity: Severity::Critical,
            message: "m".into(),
            value: None,
            at: Timestamp::from_millis(1),
            latching: false,
            zone: None,
            evidence: Vec::new(),
        },
        clamped_from: None,
    }
}

#[test]
fn a_leaf_gateway_cannot_squat_a_sibling_countys_node_at_the_city() {
    let now = Timestamp::now();
    // County 1: gateway X is its child, bound to facility fx.
    let (county1, county2, city) = (id("county-1"), id("county-2"), id("city"));
    let mut c1 = Store::open_in_memory().expect("county-1");
    c1.bindings_sync_config(&[(id("gw-x"), site("m/p/c/k1/fx"))], now)
        .expect("bind gw-x");
    // X's status claims a node it never enrolled: gw-z (a plausible future id).
    let claim = [BindingStatus {
        node: id("gw-z"),
        site: site("m/p/c/k1/fx"),
        parent: id("gw-x"),
    }];
    record(&mut c1, &county1, &id("gw-x"), &claim);
    // County 1 reports its subtree up (its status's bindings).
    let up1 = report(&county1, &c1.node_bindings().expect("bindings"));

    // The city binds both counties, and records county 1's report.
    let mut cy = Store::open_in_memory().expect("city");
    cy.bindings_sync_config_kinds(
        &[
            (county1.clone(), site("m/p/c/k1"), NodeKind::Hub),
            (county2.clone(), site("m/p/c/k2"), NodeKind::Hub),
        ],
        now,
    )
    .expect("bind counties");
    record(&mut cy, &city, &county1, &up1);

    // Later gw-z genuinely enrolls at county 2, which reports it.
    let up2 = [BindingStatus {
        node: id("gw-z"),
        site: site("m/p/c/k2/fz"),
        parent: county2.clone(),
    }];
    let refused = record(&mut cy, &city, &county2, &up2);
    assert_eq!(
        refused, 0,
        "county-2's genuine binding of gw-z is refused at the city"
    );

    // And gw-z's genuine alarm, relayed by county 2, must be admitted.
    let held = held(&cy);
    let judge = Judge {
        this: &city,
        ancestors: &[],
        child: &county2,
        child_site: Some(&site("m/p/c/k2")),
        bindings: &held,
    };
    let verdict = judge.event(&raise("gw-z", "m/p/c/k2/fz"), &AlertVia::Unknown);
    assert!(
        verdict.admitted(),
        "gw-z's genuine alarm refused: {verdict:?}"
    );
}

#[test]
fn a_gateway_cannot_speak_as_its_hubs_parent() {
    let county = id("county-1");
    let x = id("gw-x");
    let held: HashMap<NodeId, NodeBinding> = [(
        x.clone(),
        NodeBinding {
            node: x.clone(),
            site: site("m/p/c/k1/fx"),
            source: BindingSource::Enrolled,
            via: None,
            parent: None,
            kind: Some(NodeKind::Gateway),
            updated_at: Timestamp::from_millis(0),
        },
    )]
    .into_iter()
    .collect();
    let judge = Judge {
        this: &county,
        ancestors: &[],
        child: &x,
        child_site: Some(&site("m/p/c/k1/fx")),
        bindings: &held,
    };
    let raise = AlertEvent {
        id: EventId::generate(),
        alert: AlertId::generate(),
        origin: id("city"),
        hlc: Hlc::new(1, 0),
        actor: Actor::System,
        body: AlertEventBody::Raised {
            key: AlertKey::new(
                id("city"),
                "fence",
                ConditionKind::new("alarm").expect("kind"),
            )
            .expect("key"),
            site: site("m/p/c/k1/fx"),
            severity: Severity::Critical,
            message: "m".into(),
            value: None,
            at: Timestamp::from_millis(1),
            latching: false,
            zone: None,
            evidence: Vec::new(),
        },
        clamped_from: None,
    };
    let record = AuditEvent {
        origin: id("city"),
        seq: 1,
        at: Timestamp::from_millis(1),
        node: "city".into(),
        actor: "admin".into(),
        action: "user.add".into(),
        target: "mallory".into(),
        details: "{}".into(),
        prev_hash: AuditHash([0; 32]),
        hash: AuditHash([1; 32]),
    };
    let (event, audit) = (
        judge.event(&raise, &AlertVia::Unknown),
        judge.audit(&record),
    );
    assert!(
        !event.admitted() && !audit.admitted(),
        "gw-x speaks as the city: raise {event:?}, audit {audit:?}"
    );
}
