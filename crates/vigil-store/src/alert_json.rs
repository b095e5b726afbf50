//! The one JSON shape of an alert, shown by the agent's `GET /api/v1/alerts` and by the hub's
//! API and live stream (docs/ARCHITECTURE.md#alert-json): an object with `id`, `key`, `site`,
//! `source`, `kind`, `severity`, `state`, `active`, `acknowledged`, `message`, `value`,
//! `raised_at`, `updated_at`, `shelved_until`, `incident` (and what else the fold knows:
//! `closed`, `assigned_to`, `zone`, `latching`, `comments`, `evidence`, `event_count`).
//! A list answers [`AlertList`] (`{"alerts": [...], "next": CURSOR}`); one alert answers
//! [`AlertWithEvents`] (the alert's fields and its `events`).
//!
//! It is the folded [`AlertView`] seen at one moment: `state` is [`AlertView::state_at`] that
//! moment, and `shelved_until` is shown only while the shelf is in force. Every field is
//! always present (`null` when unknown, e.g. before the raise of an alert has arrived here),
//! so a client never has to tell a missing field from a null one.
//!
//! `source` is derived from the key's source: `device/point` for a field point (Modbus,
//! MQTT), a bare name for a camera (`motion`, `tamper`), a zone (`incident`) or a whole
//! device (`comm_loss`, …), and `node/{id}` for a hub's own alarm about one of its nodes
//! (`node_offline`, `link_backlog`, `security`, `clock_skew`: `subject`).

use serde::Serialize;
use vigil_core::alert::Evidence;
use vigil_core::{
    AlertEvent, AlertId, AlertKey, AlertState, AlertView, ConditionKind, NodeId, Severity,
    SitePath, Timestamp, Value,
};

/// Where an alert comes from: the node that raised it and what on that node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceJson {
    /// The node (gateway) that raised the alert.
    pub node: NodeId,
    /// The field device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The point on the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub point: Option<String>,
    /// The camera.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub camera: Option<String>,
    /// The zone (for a fused incident).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The node a hub's own alarm is about (`node_offline`, `link_backlog`, `security`,
    /// `clock_skew`; key source `node/{id}`); `node` is then the hub that raised it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// The condition kinds of a hub's own alarms about its nodes, whose key source is
/// `node/{id}`.
pub const NODE_ALARM_KINDS: [&str; 4] = ["node_offline", "link_backlog", "security", "clock_skew"];

impl SourceJson {
    /// The source named by `key`.
    pub fn of(key: &AlertKey) -> Self {
        let mut source = SourceJson {
            node: key.origin.clone(),
            device: None,
            point: None,
            camera: None,
            zone: None,
            subject: None,
        };
        match (key.kind.as_str(), key.source.split_once('/')) {
            (kind, Some(("node", subject))) if NODE_ALARM_KINDS.contains(&kind) => {
                source.subject = Some(subject.to_owned());
            }
            (_, Some((device, point))) => {
                source.device = Some(device.to_owned());
                source.point = Some(point.to_owned());
            }
            (ConditionKind::MOTION | ConditionKind::TAMPER, None) => {
                source.camera = Some(key.source.clone());
            }
            (ConditionKind::INCIDENT, None) => source.zone = Some(key.source.clone()),
            (_, None) => source.device = Some(key.source.clone()),
        }
        source
    }
}

/// One alert in the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertJson {
    /// The alert's id (UUIDv7).
    pub id: AlertId,
    /// `origin/source/kind`.
    pub key: Option<String>,
    /// The facility (or other site) the alert belongs to.
    pub site: Option<SitePath>,
    /// The node and device, point, camera or zone.
    pub source: Option<SourceJson>,
    /// The condition kind: `state`, `limit_hh`, `comm_loss`, `motion`, ….
    pub kind: Option<String>,
    /// `critical`, `major`, `minor`, `warning` or `info`.
    pub severity: Severity,
    /// The ISA-18.2 state now.
    pub state: AlertState,
    /// The condition holds.
    pub active: bool,
    /// The last activation has been acknowledged.
    pub acknowledged: bool,
    /// What the detector said.
    pub message: String,
    /// The value that decided it.
    pub value: Option<Value>,
    /// When the condition was first detected.
    pub raised_at: Option<Timestamp>,
    /// The time of the last event.
    pub updated_at: Timestamp,
    /// Until when the alert is shelved (only while the shelf is in force).
    pub shelved_until: Option<Timestamp>,
    /// The incident this alert was fused into.
    pub incident: Option<AlertId>,
    /// The episode is over.
    pub closed: bool,
    /// Who the alert is assigned to.
    pub assigned_to: Option<String>,
    /// The zone of the source.
    pub zone: Option<String>,
    /// A latching alarm (stays `latched` after it clears until reset).
    pub latching: bool,
    /// How many comments the alert has.
    pub comments: u32,
    /// Snapshots and clips kept on the gateway.
    pub evidence: Vec<Evidence>,
    /// How many events the alert's state is folded from.
    pub event_count: u32,
}

impl AlertJson {
    /// `view` as seen at `now`.
    pub fn new(view: &AlertView, now: Timestamp) -> Self {
        AlertJson {
            id: view.id,
            key: view.key.as_ref().map(ToString::to_string),
            site: view.site.clone(),
            source: view.key.as_ref().map(SourceJson::of),
            kind: view.key.as_ref().map(|k| k.kind.to_string()),
            severity: view.severity,
            state: view.state_at(now),
            active: view.active,
            acknowledged: view.acknowledged,
            message: view.message.clone(),
            value: view.value.clone(),
            raised_at: view.raised_at,
            updated_at: view.updated_at,
            shelved_until: view.shelved_until.filter(|until| *until > now),
            incident: view.incident,
            closed: view.closed,
            assigned_to: view.assigned_to.clone(),
            zone: view.zone.clone(),
            latching: view.latching,
            comments: view.comments,
            evidence: view.evidence.clone(),
            event_count: view.event_count,
        }
    }
}

/// A page of alerts: `{"alerts": [...], "next": CURSOR}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertList {
    /// The page.
    pub alerts: Vec<AlertJson>,
    /// Where the next page starts; `null` on the last page.
    pub next: Option<String>,
}

/// One alert with its history: the alert's fields and `events`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertWithEvents {
    /// The alert's fields.
    #[serde(flatten)]
    pub alert: AlertJson,
    /// Its events in fold order `(HLC, event id)`.
    pub events: Vec<AlertEvent>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(key: &str) -> serde_json::Value {
        serde_json::to_value(SourceJson::of(&key.parse().expect("key"))).expect("json")
    }

    #[test]
    fn sources_from_keys() {
        assert_eq!(
            source("gw-3/fence-north/zone1_alarm/state"),
            serde_json::json!({"node": "gw-3", "device": "fence-north", "point": "zone1_alarm"})
        );
        assert_eq!(
            source("gw-3/cam-north-1/motion"),
            serde_json::json!({"node": "gw-3", "camera": "cam-north-1"})
        );
        assert_eq!(
            source("gw-3/north-perimeter/incident"),
            serde_json::json!({"node": "gw-3", "zone": "north-perimeter"})
        );
        assert_eq!(
            source("gw-3/fence-north/comm_loss"),
            serde_json::json!({"node": "gw-3", "device": "fence-north"})
        );
        assert_eq!(
            source("county-1/node/gw-3/node_offline"),
            serde_json::json!({"node": "county-1", "subject": "gw-3"})
        );
        assert_eq!(
            source("gw-3/node/temp/limit_hh"),
            serde_json::json!({"node": "gw-3", "device": "node", "point": "temp"}),
            "a field device named node is a device"
        );
    }

    #[test]
    fn an_alert_without_its_raise_has_nulls_not_gaps() {
        let view = AlertView::empty(AlertId::generate());
        let json =
            serde_json::to_value(AlertJson::new(&view, Timestamp::from_millis(0))).expect("json");
        for field in [
            "id",
            "key",
            "site",
            "source",
            "kind",
            "severity",
            "state",
            "active",
            "acknowledged",
            "message",
            "value",
            "raised_at",
            "updated_at",
            "shelved_until",
            "incident",
        ] {
            assert!(json.get(field).is_some(), "{field}");
        }
        assert_eq!(json["state"], "normal");
    }

    /// The whole shape of one alert, its list and its history, byte for byte: the contract
    /// the agent's and the hub's clients read (docs/ARCHITECTURE.md#alert-json).
    #[test]
    fn golden_shape() {
        let id: AlertId = "0190b2a4-0000-7000-8000-000000000001".parse().expect("id");
        let incident: AlertId = "0190b2a4-0000-7000-8000-000000000002".parse().expect("id");
        let mut view = AlertView::empty(id);
        view.key = Some(
            "gw-3/fence-north/supply_voltage/limit_hh"
                .parse()
                .expect("key"),
        );
        view.site = Some(
            "ministry/guangdong/guangzhou/baiyun/prison-3"
                .parse()
                .expect("site"),
        );
        view.severity = Severity::Major;
        view.message = "supply_voltage 31.2 V above HH 30 V".into();
        view.value = Some(Value::Float(31.2));
        view.zone = Some("north-perimeter".into());
        view.evidence = vec![Evidence {
            kind: "snapshot".into(),
            uri: "evidence/1.jpg".into(),
        }];
        view.raised_at = Some(Timestamp::from_millis(1_700_000_000_000));
        view.updated_at = Timestamp::from_millis(1_700_000_005_000);
        view.active = true;
        view.acknowledged = false;
        view.shelved_until = Some(Timestamp::from_millis(1_700_000_001_000));
        view.incident = Some(incident);
        view.assigned_to = Some("duty-officer".into());
        view.comments = 2;
        view.event_count = 3;
        let now = Timestamp::from_millis(1_700_000_010_000);
        let list = AlertList {
            alerts: vec![AlertJson::new(&view, now)],
            next: Some("CURSOR".into()),
        };
        let golden = r#"{"alerts":[{"id":"0190b2a4-0000-7000-8000-000000000001","key":"gw-3/fence-north/supply_voltage/limit_hh","site":"ministry/guangdong/guangzhou/baiyun/prison-3","source":{"node":"gw-3","device":"fence-north","point":"supply_voltage"},"kind":"limit_hh","severity":"major","state":"active_unack","active":true,"acknowledged":false,"message":"supply_voltage 31.2 V above HH 30 V","value":31.2,"raised_at":"2023-11-14T22:13:20.000Z","updated_at":"2023-11-14T22:13:25.000Z","shelved_until":null,"incident":"0190b2a4-0000-7000-8000-000000000002","closed":false,"assigned_to":"duty-officer","zone":"north-perimeter","latching":false,"comments":2,"evidence":[{"kind":"snapshot","uri":"evidence/1.jpg"}],"event_count":3}],"next":"CURSOR"}"#;
        assert_eq!(serde_json::to_string(&list).expect("json"), golden);

        // A shelf in force is shown; one alert answers its fields and its events.
        let shelved = AlertWithEvents {
            alert: AlertJson::new(&view, Timestamp::from_millis(1_700_000_000_500)),
            events: Vec::new(),
        };
        let json = serde_json::to_value(&shelved).expect("json");
        assert_eq!(json["state"], "shelved");
        assert_eq!(
            json["shelved_until"],
            serde_json::to_value(view.shelved_until).expect("time")
        );
        assert_eq!(json["events"], serde_json::json!([]));
        assert_eq!(json["id"], list_id(&list));
    }

    fn list_id(list: &AlertList) -> serde_json::Value {
        serde_json::to_value(list.alerts[0].id).expect("id")
    }
}
