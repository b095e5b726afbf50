//! Recording an operator action: check it against the alert as folded now, stamp it, and
//! store it together with its place in the outboxes that carry it, in one transaction.
//!
//! Where the event goes (docs/ARCHITECTURE.md#downlink):
//!
//! - **down**, to the outbox of the child the alert came through (`child:{id}`: the child
//!   admission tied the alert to, `Store::alert_via`, kept across restarts; for an alert
//!   held from before bindings, the child its origin is reached through,
//!   [`Children::downlink_child`]), so the action reaches the gateway that raised the
//!   alert; not when this hub raised the alert itself;
//! - **up**, to the `parent` outbox, when the hub has a parent and the alert passes the
//!   escalation policy (an alert the parent never received gets no actions from below
//!   either). The policy is the one the link side relays the children's events by
//!   ([`EscalationSection::escalates_history`]): the alert's severity at its highest, so an
//!   alert that went up keeps getting its actions up after its severity dropped.
//!
//! The action's audit record (docs/ARCHITECTURE.md#audit-log: actor the user, action its name,
//! target the alert, details the request's salient fields and the event's id) commits in the same
//! transaction as the event and its outbox entries ([`Store::record_action`]): no action
//! escapes the audit log.
//!
//! The event travels in the alert's lane (critical and major alerts: `critical`). The whole
//! read-check-stamp-write runs under the store's lock (`vigil_link::SharedStore`), so two
//! operators acknowledging the same alert at once get one acknowledgement and one refusal.

use vigil_core::{Actor, AlertEvent, AlertId, AlertView, EventId, NodeId, Timestamp};
use vigil_store::{AuditEntry, Store, StoreError};

use crate::action::{Action, Refused};
use crate::children::{child_link, Children, PARENT_LINK};
use crate::clock::{HubClock, StampError};
use crate::escalation::EscalationSection;

/// What recording an action needs to know of the hub.
#[derive(Debug, Clone)]
pub struct ActionContext {
    /// This hub: the origin of the events its operators create.
    pub node: NodeId,
    /// Whether the hub has a parent to tell.
    pub has_parent: bool,
    /// What goes up.
    pub escalation: EscalationSection,
    /// The children, for the way down.
    pub children: Children,
    /// The hub's clock.
    pub clock: HubClock,
}

/// An action recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The event it became.
    pub event: AlertEvent,
    /// The alert with the event folded in.
    pub view: AlertView,
    /// The outboxes the event was queued in.
    pub links: Vec<String>,
}

/// Why an action was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No event of the alert is stored here.
    #[error("no alert {0} here")]
    NotFound(AlertId),
    /// The alert's state does not allow the action.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// Nothing can be stamped after the alert's last event (at the top of the clock's
    /// range).
    #[error("alert {alert}: {source}")]
    Unstampable {
        /// The alert.
        alert: AlertId,
        /// Why.
        source: StampError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Performs `action` on `alert` for `user` at `now`; see the module docs.
pub fn record(
    store: &mut Store,
    ctx: &ActionContext,
    alert: AlertId,
    action: &Action,
    user: &str,
    now: Timestamp,
) -> Result<Recorded, ActionError> {
    // One row: the alert as folded and its peak severity, kept by the store as events
    // arrive (no re-read of the alert's history, however long).
    let vigil_store::AlertContext {
        view,
        peak_severity,
    } = store
        .alert_context(alert)?
        .ok_or(ActionError::NotFound(alert))?;
    let body = action.check(&view, now)?;
    let origin = view
        .key
        .as_ref()
        .map(|k| k.origin.clone())
        .ok_or(Refused::NotRaised)?;
    let event = AlertEvent {
        id: EventId::generate(),
        alert,
        origin: ctx.node.clone(),
        hlc: ctx
            .clock
            .try_stamp_after(view.last.map(|(hlc, _)| hlc), now)
            .map_err(|source| ActionError::Unstampable { alert, source })?,
        actor: Actor::User(user.to_owned()),
        body,
        clamped_from: None,
    };
    let lane = view.severity.lane();
    let mut links = Vec::with_capacity(2);
    if origin != ctx.node {
        // The child the alert came through, as admission recorded it (it survives a
        // restart, unlike the routes learnt from traffic); else the route to its origin.
        let child = match store.alert_via(&alert)? {
            Some(via) => via,
            None => ctx.children.downlink_child(&origin),
        };
        links.push(child_link(&child));
    }
    if ctx.has_parent && ctx.escalation.escalates_history(&view, peak_severity) {
        links.push(PARENT_LINK.to_owned());
    }
    let mut details = action.audit_details();
    if let Some(fields) = details.as_object_mut() {
        fields.insert("event".into(), event.id.to_string().into());
    }
    let audit = AuditEntry {
        at: now,
        node: ctx.node.to_string(),
        actor: user.to_owned(),
        action: action.name().to_owned(),
        target: alert.to_string(),
        details,
    };
    let items: Vec<(&str, _)> = links.iter().map(|link| (link.as_str(), lane)).collect();
    let (_, audited) = store.record_action(&event, &items, &audit)?;
    let view = store.alert(alert)?.ok_or(ActionError::NotFound(alert))?;
    tracing::info!(
        %alert, action = action.name(), user, event = %event.id, hlc = %event.hlc,
        state = %view.state_at(now), links = ?links, audit_seq = audited.seq,
        "operator action recorded"
    );
    Ok(Recorded { event, view, links })
}

#[cfg(test)]
mod tests {
    use vigil_core::{AlertEventBody, AlertKey, Hlc, Severity, SitePath};

    use super::*;
    use crate::action::Action;

    const AT: Timestamp = Timestamp::from_millis(1_795_000_000_000);

    fn context(hub: &NodeId) -> ActionContext {
        ActionContext {
            node: hub.clone(),
            has_parent: true,
            escalation: EscalationSection::default(),
            children: Children::new(),
            clock: HubClock::resume(None),
        }
    }

    /// An alert from `gw-1` raised at `raised`, then updated to `now_severity`.
    fn alert(store: &mut Store, raised: Severity, now_severity: Severity) -> AlertId {
        let alert = AlertId::generate();
        let gw = NodeId::new("gw-1").expect("node");
        let key: AlertKey = "gw-1/door-3/forced/state".parse().expect("key");
        let bodies = [
            AlertEventBody::Raised {
                key,
                site: SitePath::new("ministry/gd").expect("site"),
                severity: raised,
                message: "door forced".into(),
                value: None,
                at: AT,
                latching: false,
                zone: None,
                evidence: Vec::new(),
            },
            AlertEventBody::ValueUpdated {
                value: None,
                severity: Some(now_severity),
                message: None,
                at: AT,
            },
        ];
        let events: Vec<AlertEvent> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| AlertEvent {
                id: EventId::generate(),
                alert,
                origin: gw.clone(),
                hlc: Hlc::new(1_795_000_000_000 + i as u64, 0),
                actor: Actor::System,
                body,
                clamped_from: None,
            })
            .collect();
        store.apply_events(&events).expect("apply");
        alert
    }

    fn ack() -> Action {
        Action::Ack { comment: None }
    }

    #[test]
    fn an_action_on_an_alert_that_went_up_goes_up_after_its_severity_dropped() {
        let mut store = Store::open_in_memory().expect("store");
        let hub = NodeId::new("county-1").expect("node");
        let ctx = context(&hub);
        let went_up = alert(&mut store, Severity::Critical, Severity::Info);
        let now = Timestamp::from_millis(AT.as_millis() + 10);
        let recorded = record(&mut store, &ctx, went_up, &ack(), "op", now).expect("ack");
        assert!(
            recorded.links.iter().any(|l| l == PARENT_LINK),
            "the alert's peak (critical) sent it up, so its ack follows: {:?}",
            recorded.links
        );
        assert!(
            recorded.links.iter().any(|l| l.starts_with("child:")),
            "and down, towards its origin: {:?}",
            recorded.links
        );
    }

    #[test]
    fn an_action_on_an_alert_that_never_went_up_stays_here() {
        let mut store = Store::open_in_memory().expect("store");
        let hub = NodeId::new("county-1").expect("node");
        let ctx = context(&hub);
        let stayed = alert(&mut store, Severity::Info, Severity::Info);
        let now = Timestamp::from_millis(AT.as_millis() + 10);
        let recorded = record(&mut store, &ctx, stayed, &ack(), "op", now).expect("ack");
        assert!(
            !recorded.links.iter().any(|l| l == PARENT_LINK),
            "{:?}",
            recorded.links
        );
    }

    #[test]
    fn an_alert_stamped_at_the_top_of_the_range_refuses_actions_and_stores_nothing() {
        let mut store = Store::open_in_memory().expect("store");
        let hub = NodeId::new("county-1").expect("node");
        let ctx = context(&hub);
        let top = alert(&mut store, Severity::Critical, Severity::Critical);
        let mut last = store.alert_events(top).expect("events").remove(1);
        last.id = EventId::generate();
        last.hlc = Hlc::MAX;
        store.apply_events(&[last]).expect("stored");
        let events = store.event_count().expect("count");
        let now = Timestamp::from_millis(AT.as_millis() + 10);
        let err = record(&mut store, &ctx, top, &ack(), "op", now).expect_err("no stamp after it");
        assert!(
            matches!(err, ActionError::Unstampable { alert, .. } if alert == top),
            "{err}"
        );
        assert!(
            err.to_string().contains("top of the clock's range"),
            "{err}"
        );
        assert_eq!(store.event_count().expect("count"), events);
        // Other alerts are not affected.
        let other = alert(&mut store, Severity::Critical, Severity::Critical);
        record(&mut store, &ctx, other, &ack(), "op", now).expect("ack");
    }

    #[test]
    fn an_unknown_alert_is_not_found() {
        let mut store = Store::open_in_memory().expect("store");
        let hub = NodeId::new("county-1").expect("node");
        let now = Timestamp::from_millis(AT.as_millis() + 10);
        let err = record(
            &mut store,
            &context(&hub),
            AlertId::generate(),
            &ack(),
            "op",
            now,
        )
        .expect_err("nothing stored");
        assert!(matches!(err, ActionError::NotFound(_)), "{err}");
    }
}
