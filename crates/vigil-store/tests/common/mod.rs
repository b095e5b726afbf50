//! Builders of alert events for the store's integration tests.

#![allow(dead_code)]

use vigil_core::{
    Actor, AlertEvent, AlertEventBody, AlertId, AlertKey, ConditionKind, EventId, Hlc, NodeId,
    Severity, SitePath, Timestamp,
};

/// A node id known to be valid.
pub fn node(id: &str) -> NodeId {
    NodeId::new(id).expect("valid node id")
}

/// An alert id from a small number (readable in failures).
pub fn alert_id(n: u128) -> AlertId {
    AlertId::from_bytes((0xA000_0000_0000_0000_0000_0000_0000_0000 | n).to_be_bytes())
}

/// An event id from a small number.
pub fn event_id(n: u128) -> EventId {
    EventId::from_bytes((0xE000_0000_0000_0000_0000_0000_0000_0000 | n).to_be_bytes())
}

/// The key `gw-1/{source}/state`.
pub fn key(source: &str) -> AlertKey {
    AlertKey::new(
        node("gw-1"),
        source,
        ConditionKind::new(ConditionKind::STATE).expect("valid kind"),
    )
    .expect("valid key")
}

/// A raise of `key` with `severity`.
pub fn raised(key: &AlertKey, severity: Severity) -> AlertEventBody {
    AlertEventBody::Raised {
        key: key.clone(),
        site: SitePath::new("ministry/gd/gz/baiyun/prison-3").expect("valid site"),
        severity,
        message: format!("{key} raised"),
        value: None,
        at: Timestamp::from_millis(1_795_000_000_000),
        latching: false,
        zone: Some("block-a".into()),
        evidence: Vec::new(),
    }
}

/// A clear.
pub fn cleared() -> AlertEventBody {
    AlertEventBody::Cleared {
        value: None,
        at: Timestamp::from_millis(1_795_000_000_000),
    }
}

/// An acknowledgement.
pub fn acknowledged() -> AlertEventBody {
    AlertEventBody::Acknowledged { comment: None }
}

/// A close.
pub fn closed() -> AlertEventBody {
    AlertEventBody::Closed { reason: None }
}

/// An event `n` of `alert` at HLC wall time `wall` (ms).
pub fn event(n: u128, alert: AlertId, wall: u64, body: AlertEventBody) -> AlertEvent {
    AlertEvent {
        id: event_id(n),
        alert,
        origin: node("gw-1"),
        hlc: Hlc::new(wall, 0),
        actor: Actor::System,
        body,
        clamped_from: None,
    }
}

/// A realistic base for HLC wall times (late 2026).
pub const T0: u64 = 1_795_000_000_000;

/// A stream of events over `alerts` alerts: event `i` (from 1) belongs to alert `i % alerts`,
/// and the bodies cycle raise, value update, ack, comment, clear. Stamps increase with `i`
/// unless `scramble`, which permutes them within blocks of 8 so arrival order is not fold
/// order.
pub fn stream_event(i: u64, alerts: u64, scramble: bool) -> AlertEvent {
    let alert_n = u128::from(i % alerts);
    let alert = alert_id(alert_n);
    let k = key(&format!("door-{alert_n}/forced"));
    let body = match (i / alerts) % 5 {
        0 => raised(
            &k,
            if alert_n % 2 == 0 {
                Severity::Critical
            } else {
                Severity::Minor
            },
        ),
        1 => AlertEventBody::ValueUpdated {
            value: Some(vigil_core::Value::Int(i64::try_from(i).unwrap_or(0))),
            severity: None,
            message: None,
            at: Timestamp::from_millis(1_795_000_000_000),
        },
        2 => acknowledged(),
        3 => AlertEventBody::Commented {
            text: format!("note {i}"),
        },
        _ => cleared(),
    };
    let tick = if scramble {
        (i & !7) | ((i * 5) & 7)
    } else {
        i
    };
    event(u128::from(i), alert, T0 + tick, body)
}
