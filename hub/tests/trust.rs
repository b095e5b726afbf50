//! A node speaks only for its subtree (docs/ARCHITECTURE.md#site-bindings-and-admission),
//! against a running hub: gateway X holds a real certificate, enrolled with
//! `--site` for its own facility, and sends — in the batches a compromised gateway would —
//! its genuine alarms mixed with every forgery: an alert at another facility, alerts naming
//! gateway Y and the hub itself as their origin, actions on Y's real alert (acknowledge,
//! close, shelve, out of service), audit records under Y's id and the hub's. Each forgery
//! is refused — not in the API — counted, audited and raised as a security alarm about X;
//! X's genuine events in the same batches are applied and its link does not stall; Y's
//! alert, its route (an ack at the hub goes down to Y, not to X) and its audit trail are
//! untouched. One level up, a city records the bindings its county reports only inside the
//! county's own, and refuses what the county relays from outside it.

mod common;

use std::time::Duration;

use common::child::{enroll, Child as Gw};
use common::{bounded, eventually, Gateway, Hub, PRISON_3, PRISON_4};
use hyper::StatusCode;
use vigil_core::{AlertEventBody, AlertId, NodeId, Severity, Timestamp};
use vigil_hub::auth::Role;
use vigil_wire::{AuditEvent, AuditHash, LinkEvent};

const HUB: &str = "county-baiyun";
const X: &str = "gw-prison-3";
const Y: &str = "gw-prison-4";

fn node(id: &str) -> NodeId {
    NodeId::new(id).expect("node id")
}

/// An audit record under `origin`'s name, as X would forge it.
fn audit_record(origin: &str, seq: u64) -> LinkEvent {
    LinkEvent::Audit(AuditEvent {
        origin: node(origin),
        seq,
        at: Timestamp::now(),
        node: origin.to_owned(),
        actor: "li.na".to_owned(),
        action: "alert.ack".to_owned(),
        target: "forged".to_owned(),
        details: "{}".to_owned(),
        prev_hash: AuditHash([0; 32]),
        hash: AuditHash([7; 32]),
    })
}

async fn held(hub: &Hub, alert: AlertId) -> Option<vigil_core::AlertView> {
    hub.link
        .store
        .call(move |s| s.alert(alert))
        .await
        .expect("read")
}

/// `vigil_link_refused_events_total{reason="…"}` as the hub's `/metrics` shows it.
async fn refused(hub: &Hub, reason: &str) -> u64 {
    let resp = hub.send("GET", "/metrics", &[], "").await;
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    let prefix = format!("vigil_link_refused_events_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().expect("a count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_cannot_speak_for_another_facility_node_or_the_hub() {
    bounded(async {
        let hub = Hub::start_config(|store| common::county_toml(store, None, ""), &[]).await;
        let x_tls = enroll(&hub, X, PRISON_3).await;
        let y_tls = enroll(&hub, Y, PRISON_4).await;
        let mut y = Gw::start(Y, PRISON_4, &hub.broker, y_tls);
        let mut x = Gw::start(X, PRISON_3, &hub.broker, x_tls);

        // Y's genuine alarm.
        let (y_alert, y_raise) = y.raise("fence-east/zone2");
        y.send(vec![LinkEvent::Alert(y_raise)]).await;
        eventually("Y's alarm at the hub", || async {
            held(&hub, y_alert).await.map(|_| ())
        })
        .await;

        // X: genuine alarms around every forgery, in one append.
        let (x_first, first) = x.raise("door-1/forced");
        let (x_last, last) = x.raise("door-2/forced");
        // An alert at Y's facility, under X's own name.
        let (other_site, mut at_y) = x.raise("door-3/forced");
        if let AlertEventBody::Raised { site, .. } = &mut at_y.body {
            *site = vigil_core::SitePath::new(PRISON_4).expect("site");
        }
        // Alerts naming Y, and the hub, as their origin (event and key).
        let as_other = |origin: &str| {
            let mut g = Gateway::new(origin, PRISON_3);
            let alert = AlertId::generate();
            (
                alert,
                g.raise(alert, "gate/forced", "state", Severity::Critical, false),
            )
        };
        let (as_y, as_y_raise) = as_other(Y);
        let (as_hub, as_hub_raise) = as_other(HUB);
        // X's name on the event, Y's on the alert's key.
        let (y_key, mut y_key_raise) = as_other(Y);
        y_key_raise.origin = node(X);
        // Actions on Y's real alert: by X, and in Y's name.
        let on_y = |x: &mut Gw, body| x.events.event(y_alert, body);
        let actions = vec![
            on_y(&mut x, AlertEventBody::Acknowledged { comment: None }),
            on_y(
                &mut x,
                AlertEventBody::Closed {
                    reason: Some("forged".into()),
                },
            ),
            on_y(
                &mut x,
                AlertEventBody::Shelved {
                    until: Timestamp::now().plus_millis(86_400_000),
                    reason: None,
                },
            ),
            on_y(&mut x, AlertEventBody::OutOfService { active: true }),
        ];
        let mut ack_as_y = on_y(&mut x, AlertEventBody::Acknowledged { comment: None });
        ack_as_y.origin = node(Y);
        let mut items = vec![LinkEvent::Alert(first)];
        items.extend(
            [at_y, as_y_raise, as_hub_raise, y_key_raise, ack_as_y]
                .into_iter()
                .chain(actions)
                .map(LinkEvent::Alert),
        );
        items.extend([audit_record(Y, 1), audit_record(HUB, 1), audit_record(X, 1)]);
        items.push(LinkEvent::Alert(last));
        x.send(items).await;

        // X's genuine alarms arrive, and its link drains: nothing holds it up.
        for alert in [x_first, x_last] {
            eventually("X's genuine alarm at the hub", || async {
                held(&hub, alert).await.map(|_| ())
            })
            .await;
        }
        eventually("X's outbox acknowledged", || async {
            x.drained().await.then_some(())
        })
        .await;

        // The forgeries are not in the API.
        for forged in [other_site, as_y, as_hub, y_key] {
            let (status, _) = hub.get(&format!("/api/v1/alerts/{forged}")).await;
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "forged alert {forged} listed"
            );
        }
        // Y's alert is as Y left it.
        let view = held(&hub, y_alert).await.expect("Y's alert");
        assert!(
            view.active && !view.acknowledged && !view.closed,
            "{view:?}"
        );
        assert!(
            view.shelved_until.is_none() && !view.out_of_service,
            "{view:?}"
        );
        assert_eq!(view.event_count, 1, "{view:?}");

        // Counted, by reason.
        assert_eq!(refused(&hub, "site_outside_binding").await, 1);
        assert_eq!(refused(&hub, "foreign_origin").await, 4);
        assert_eq!(refused(&hub, "alert_not_through_child").await, 4);
        assert_eq!(refused(&hub, "foreign_audit").await, 2);

        // Audited, per reason, with X as the actor.
        let audited = eventually("the refusals in the audit log", || async {
            let records = hub
                .link
                .store
                .call(|s| s.audit_records(0, 10_000))
                .await
                .expect("audit");
            let refused: Vec<_> = records
                .into_iter()
                .filter(|r| r.entry.action == "link.refused")
                .collect();
            (refused.len() >= 4).then_some(refused)
        })
        .await;
        for reason in [
            "site_outside_binding",
            "foreign_origin",
            "alert_not_through_child",
            "foreign_audit",
        ] {
            assert!(
                audited
                    .iter()
                    .any(|r| r.entry.actor == X && r.entry.target == reason),
                "{reason} not audited: {audited:?}"
            );
        }

        // A security alarm about X, raised by the hub itself.
        let key = format!("{HUB}/node/{X}/security");
        eventually("the security alarm about X", || async {
            let (status, body) = hub.get("/api/v1/alerts?limit=1000").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["alerts"]
                .as_array()
                .expect("alerts")
                .iter()
                .find(|a| a["key"] == key.as_str())
                .map(|_| ())
        })
        .await;

        // The audit trails held: X's own record, none under Y's name or the hub's.
        let origins = hub
            .link
            .store
            .call(|s| s.audit_remote_origins())
            .await
            .expect("origins");
        assert_eq!(origins, [X.to_owned()]);

        // Y's route is Y: an ack at the hub goes down to Y, not to X.
        let session = hub.session("li.na", Role::Operator, "ministry").await;
        let (status, body) = hub
            .post(
                &format!("/api/v1/alerts/{y_alert}/ack"),
                &session.headers(),
                "",
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        eventually("the hub's ack at Y", || async {
            y.alert(y_alert)
                .await
                .filter(|v| v.acknowledged)
                .map(|_| ())
        })
        .await;
        assert!(x.alert(y_alert).await.is_none(), "Y's ack went to X");
        hub.stop().await;
    })
    .await;
}

/// A child with no binding here (certified, but not enrolled with a site nor declared in
/// hub.toml) gets nothing applied and is alarmed about; its batches are not acknowledged, so
/// once an operator binds it they are resent and applied: nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbound_childs_batches_are_held_back_until_it_is_bound() {
    bounded(async {
        let hub = Hub::start_config(|store| common::county_toml(store, None, ""), &[]).await;
        // A certificate from the hub's CA without a token: no site.
        let id = node("gw-stray");
        let request = vigil_pki::node_key_and_csr(&id).expect("csr");
        let ca = hub.link.security.pki.ca();
        let cert = ca
            .issue_node(&request.csr_pem, &id, Duration::from_secs(3600))
            .expect("issue");
        let tls = vigil_pki::client_config(ca.cert_pem(), Some((&cert.cert_pem, &request.key_pem)))
            .expect("client config");
        let mut stray = Gw::start("gw-stray", PRISON_3, &hub.broker, tls);
        let (alert, raise) = stray.raise("door-1/forced");
        stray.send(vec![LinkEvent::Alert(raise)]).await;
        // Refused, and held back: not applied, not acknowledged — the child keeps it.
        eventually("the stray's batch refused as unbound", || async {
            (refused(&hub, "unbound").await >= 1).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(held(&hub, alert).await.is_none());
        assert!(
            !stray.drained().await,
            "an unbound child's batch is not acknowledged"
        );
        // Once an operator binds it, its resend is applied: nothing was lost.
        let path = hub.config.store.path.clone();
        tokio::task::spawn_blocking(move || {
            vigil_store::Store::open(&path)
                .expect("store")
                .bindings_sync_config(
                    &[(
                        node("gw-stray"),
                        vigil_core::SitePath::new(PRISON_3).expect("site"),
                    )],
                    vigil_core::Timestamp::now(),
                )
                .expect("bind")
        })
        .await
        .expect("join");
        eventually("the stray's outbox acknowledged once bound", || async {
            stray.drained().await.then_some(())
        })
        .await;
        assert!(held(&hub, alert).await.is_some(), "applied once bound");
        hub.stop().await;
    })
    .await;
}

/// Writes `node`'s identity from `parent`'s CA where a hub whose store is `store` looks
/// for it (`parent/` next to the store), as `vigil-hub enroll` does.
fn write_parent_identity(parent: &Hub, store: &std::path::Path, node_id: &str) {
    let id = node(node_id);
    let request = vigil_pki::node_key_and_csr(&id).expect("csr");
    let ca = parent.link.security.pki.ca();
    let cert = ca
        .issue_node(&request.csr_pem, &id, Duration::from_secs(3600))
        .expect("issue");
    let dir = store.parent().expect("dir").join("parent");
    std::fs::create_dir_all(&dir).expect("mkdir");
    vigil_pki::write_private_key(&dir.join("node.key"), &request.key_pem).expect("key");
    vigil_pki::write_certificate(&dir.join("node.pem"), &cert.cert_pem).expect("cert");
    vigil_pki::write_certificate(&dir.join("ca.pem"), ca.cert_pem()).expect("ca");
}

/// Bindings travel up with the county's status; the city, which bound the county to prison
/// 3 only, records gateway X's (inside) and refuses Y's (outside) as a finding, and refuses
/// Y's alarm the county relays, while X's reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_takes_the_bindings_a_child_reports_only_inside_its_own() {
    bounded(async {
        let city = Hub::start_config(
            |store| {
                format!(
                    "[node]\nid = \"city-guangzhou\"\nlevel = \"city\"\nname = \"City\"\n\
                     site = \"ministry/gd/gz\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
                     [mqtt]\nlisten = \"127.0.0.1:0\"\n\n[store]\npath = {:?}\n\n\
                     [[child]]\nnode = \"{HUB}\"\nsite = \"{PRISON_3}\"\nkind = \"hub\"\n",
                    store.display().to_string()
                )
            },
            &[],
        )
        .await;
        let county = Hub::start_config(
            |store| {
                write_parent_identity(&city, store, HUB);
                common::county_toml(store, Some(&city.broker), "")
            },
            &[],
        )
        .await;
        let x_tls = enroll(&county, X, PRISON_3).await;
        let y_tls = enroll(&county, Y, PRISON_4).await;

        // X's binding is recorded at the city, through the county; Y's is refused.
        eventually("X's binding at the city", || async {
            let bindings = city
                .link
                .store
                .call(|s| s.node_bindings())
                .await
                .expect("bindings");
            bindings
                .into_iter()
                .find(|b| b.node.as_str() == X)
                .filter(|b| b.via.as_ref().map(NodeId::as_str) == Some(HUB))
        })
        .await;
        eventually("Y's binding refused at the city", || async {
            (refused(&city, "foreign_binding").await >= 1).then_some(())
        })
        .await;
        let y_bound = city
            .link
            .store
            .call(|s| s.node_binding(&node(Y)))
            .await
            .expect("binding");
        assert!(y_bound.is_none(), "{y_bound:?}");

        let mut x = Gw::start(X, PRISON_3, &county.broker, x_tls);
        let mut y = Gw::start(Y, PRISON_4, &county.broker, y_tls);
        let (y_alert, y_raise) = y.raise("fence-east/zone2");
        y.send(vec![LinkEvent::Alert(y_raise)]).await;
        let (x_alert, x_raise) = x.raise("door-1/forced");
        x.send(vec![LinkEvent::Alert(x_raise)]).await;
        // Both at the county (each inside its own binding there) ...
        for alert in [y_alert, x_alert] {
            eventually("the alarm at the county", || async {
                held(&county, alert).await.map(|_| ())
            })
            .await;
        }
        // ... X's at the city, Y's refused there as outside the county's binding.
        eventually("X's alarm at the city", || async {
            held(&city, x_alert).await.map(|_| ())
        })
        .await;
        eventually("Y's alarm refused at the city", || async {
            (refused(&city, "site_outside_binding").await >= 1).then_some(())
        })
        .await;
        assert!(held(&city, y_alert).await.is_none());
        // A security alarm at the city about its child, the county.
        let key = format!("city-guangzhou/node/{HUB}/security");
        eventually("the security alarm about the county", || async {
            let (status, body) = city.get("/api/v1/alerts?limit=1000").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["alerts"]
                .as_array()
                .expect("alerts")
                .iter()
                .find(|a| a["key"] == key.as_str())
                .map(|_| ())
        })
        .await;
        drop((x, y));
        county.stop().await;
        city.stop().await;
    })
    .await;
}

/// Directives travel down only, and a child acknowledges only for itself and the nodes it
/// passed one to (docs/ARCHITECTURE.md#directives): X sends a directive up and an
/// acknowledgement in Y's name; neither is stored, both are counted as `forged_directive`,
/// audited and raised as a security alarm about X, and X's link does not stall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_can_neither_send_a_directive_up_nor_acknowledge_for_another_node() {
    use vigil_wire::{Directive, DirectiveAck, DirectiveBody, DirectiveOutcome};
    bounded(async {
        let hub = Hub::start_config(|store| common::county_toml(store, None, ""), &[]).await;
        let x_tls = enroll(&hub, X, PRISON_3).await;
        let mut x = Gw::start(X, PRISON_3, &hub.broker, x_tls);
        let directive = Directive {
            id: vigil_core::EventId::generate(),
            origin: node(X),
            target: vigil_core::SitePath::new(PRISON_4).expect("site"),
            actor: "forger".to_owned(),
            issued_at: Timestamp::now(),
            deadline: Timestamp::now(),
            body: DirectiveBody::Order {
                text: "stand down".to_owned(),
            },
        };
        let forged_ack = DirectiveAck {
            directive: vigil_core::EventId::generate(),
            node: node(Y),
            outcome: DirectiveOutcome::Applied,
            reason: None,
            at: Timestamp::now(),
            relayed_to: Vec::new(),
        };
        let (alert, raise) = x.raise("door-1/forced");
        x.send(vec![
            LinkEvent::Directive(directive.clone()),
            LinkEvent::DirectiveAck(forged_ack),
            LinkEvent::Alert(raise),
        ])
        .await;
        eventually("X's outbox acknowledged", || async {
            x.drained().await.then_some(())
        })
        .await;
        assert!(
            held(&hub, alert).await.is_some(),
            "X's genuine alarm applied"
        );
        let id = directive.id;
        let stored = hub
            .link
            .store
            .call(move |s| s.directive(&id))
            .await
            .expect("read");
        assert!(stored.is_none(), "a directive from below is not stored");
        assert_eq!(refused(&hub, "forged_directive").await, 2);
        eventually("the refusal in the audit log", || async {
            let records = hub
                .link
                .store
                .call(|s| s.audit_records(0, 10_000))
                .await
                .expect("audit");
            records
                .iter()
                .any(|r| {
                    r.entry.action == "link.refused"
                        && r.entry.actor == X
                        && r.entry.target == "forged_directive"
                })
                .then_some(())
        })
        .await;
        let key = format!("{HUB}/node/{X}/security");
        eventually("the security alarm about X", || async {
            let (status, body) = hub.get("/api/v1/alerts?limit=1000").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["alerts"]
                .as_array()
                .expect("alerts")
                .iter()
                .find(|a| a["key"] == key.as_str())
                .map(|_| ())
        })
        .await;
        hub.stop().await;
    })
    .await;
}

/// A gateway speaks only as itself (docs/ARCHITECTURE.md#site-bindings-and-admission): X,
/// enrolled at the county by `vigil-agent enroll` (a gateway), reports in its status a
/// binding for `gw-z`, a node it invents at its own site, raises an alarm at its own site
/// under the id of the ministry (an ancestor the county has no binding for) and sends an
/// audit record under an unknown node's id. The county refuses all three (foreign_binding,
/// foreign_origin, foreign_audit) and reports nothing of gw-z up; when gw-z really enrolls
/// at another county, the city takes its binding through that county.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_reports_no_bindings_and_speaks_for_no_node_unknown_here() {
    bounded(async {
        const TIANHE: &str = "county-tianhe";
        const TIANHE_SITE: &str = "ministry/gd/gz/tianhe";
        const Z: &str = "gw-z";
        let city = Hub::start_config(
            |store| {
                format!(
                    "[node]\nid = \"city-guangzhou\"\nlevel = \"city\"\nname = \"City\"\n\
                     site = \"ministry/gd/gz\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
                     [mqtt]\nlisten = \"127.0.0.1:0\"\n\n[store]\npath = {:?}\n\n\
                     [[child]]\nnode = \"{HUB}\"\nsite = \"ministry/gd/gz/baiyun\"\nkind = \"hub\"\n\n\
                     [[child]]\nnode = \"{TIANHE}\"\nsite = \"{TIANHE_SITE}\"\nkind = \"hub\"\n",
                    store.display().to_string()
                )
            },
            &[],
        )
        .await;
        let county = Hub::start_config(
            |store| {
                write_parent_identity(&city, store, HUB);
                common::county_toml(store, Some(&city.broker), "")
            },
            &[],
        )
        .await;
        let x_tls = enroll(&county, X, PRISON_3).await;
        let forged = vec![vigil_wire::BindingStatus {
            node: node(Z),
            site: vigil_core::SitePath::new(PRISON_3).expect("site"),
            parent: node(X),
        }];
        let mut x = Gw::start_with(X, PRISON_3, &county.broker, x_tls, forged);

        // X's genuine alarm around the forgeries: an alarm at its own site under the
        // ministry's id (event and key), and an audit record of a node unknown here.
        let (x_first, first) = x.raise("door-1/forced");
        let (x_last, last) = x.raise("door-2/forced");
        let mut as_ministry = Gateway::new("ministry", PRISON_3);
        let ministry_alert = AlertId::generate();
        let ministry_raise =
            as_ministry.raise(ministry_alert, "gate/forced", "state", Severity::Critical, false);
        x.send(vec![
            LinkEvent::Alert(first),
            LinkEvent::Alert(ministry_raise),
            audit_record("gw-unknown", 1),
            LinkEvent::Alert(last),
        ])
        .await;
        for alert in [x_first, x_last] {
            eventually("X's genuine alarm at the county", || async {
                held(&county, alert).await.map(|_| ())
            })
            .await;
        }
        eventually("X's outbox acknowledged", || async {
            x.drained().await.then_some(())
        })
        .await;
        eventually("X's reported binding refused", || async {
            (refused(&county, "foreign_binding").await >= 1).then_some(())
        })
        .await;
        assert_eq!(refused(&county, "foreign_origin").await, 1);
        assert_eq!(refused(&county, "foreign_audit").await, 1);
        assert!(held(&county, ministry_alert).await.is_none());
        let origins = county
            .link
            .store
            .call(|s| s.audit_remote_origins())
            .await
            .expect("origins");
        assert!(!origins.iter().any(|o| o == "gw-unknown"), "{origins:?}");
        let z_here = county
            .link
            .store
            .call(|s| s.node_binding(&node(Z)))
            .await
            .expect("binding");
        assert!(z_here.is_none(), "{z_here:?}");
        // The county's bindings have reached the city (X's, through the county).
        eventually("X's binding at the city", || async {
            city.link
                .store
                .call(|s| s.node_binding(&node(X)))
                .await
                .expect("binding")
                .filter(|b| b.via.as_ref().map(NodeId::as_str) == Some(HUB))
        })
        .await;

        // gw-z's genuine enrollment at another county: its binding reaches the city.
        let tianhe = Hub::start_config(
            |store| {
                write_parent_identity(&city, store, TIANHE);
                format!(
                    "[node]\nid = \"{TIANHE}\"\nlevel = \"county\"\nname = \"Tianhe\"\n\
                     site = \"{TIANHE_SITE}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
                     [mqtt]\nlisten = \"127.0.0.1:0\"\n\n[parent]\nurl = \"{}\"\n\n\
                     [store]\npath = {:?}\n",
                    city.broker,
                    store.display().to_string()
                )
            },
            &[],
        )
        .await;
        let _z_tls = enroll(&tianhe, Z, &format!("{TIANHE_SITE}/prison-9")).await;
        let z_at_city = eventually("gw-z's binding at the city, through Tianhe", || async {
            city.link
                .store
                .call(|s| s.node_binding(&node(Z)))
                .await
                .expect("binding")
                .filter(|b| b.via.as_ref().map(NodeId::as_str) == Some(TIANHE))
        })
        .await;
        assert_eq!(z_at_city.site.as_str(), format!("{TIANHE_SITE}/prison-9"));
        drop(x);
        tianhe.stop().await;
        county.stop().await;
        city.stop().await;
    })
    .await;
}

/// `vigil-hub` run as a command against `hub`'s config file (the store the running hub
/// uses): its exit status, standard output and standard error.
async fn hub_command(hub: &Hub, args: &'static [&'static str]) -> (bool, String, String) {
    let config = hub
        .store_path
        .parent()
        .and_then(std::path::Path::parent)
        .expect("dir")
        .join("hub.toml");
    let out = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("vigil-hub")
            .expect("binary")
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .expect("run")
    })
    .await
    .expect("join");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `vigil-hub unbind --node X` against a running hub (docs/ARCHITECTURE.md#site-bindings-and-admission):
/// X's binding is removed and its certificate revoked, audited; `vigil-hub nodes` no longer
/// lists it as bound; the running hub drops X's connection, and X's next alarm stays in its
/// outbox (not applied, not acknowledged). A `[[child]]` of hub.toml is refused with what
/// to do, and so is a node not bound here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbinding_a_node_removes_its_binding_and_revokes_it_at_the_running_hub() {
    bounded(async {
        let hub = Hub::start_config(
            |store| {
                common::county_toml(
                    store,
                    None,
                    "\n[[child]]\nnode = \"gw-ext\"\nsite = \"ministry/gd/gz/baiyun/prison-9\"\n",
                )
            },
            &[],
        )
        .await;
        let x_tls = enroll(&hub, X, PRISON_3).await;
        let mut x = Gw::start(X, PRISON_3, &hub.broker, x_tls);
        let (before, raise) = x.raise("door-1/forced");
        x.send(vec![LinkEvent::Alert(raise)]).await;
        eventually("X's alarm at the hub", || async {
            held(&hub, before).await.map(|_| ())
        })
        .await;

        // Refused: a [[child]] (bound by hub.toml), a node not bound here.
        let (ok, _, stderr) = hub_command(&hub, &["unbind", "--node", "gw-ext"]).await;
        assert!(
            !ok && stderr.contains("remove it from hub.toml"),
            "{stderr}"
        );
        let (ok, _, stderr) = hub_command(&hub, &["unbind", "--node", "gw-nobody"]).await;
        assert!(!ok && stderr.contains("not bound here"), "{stderr}");

        let (ok, stdout, stderr) = hub_command(&hub, &["unbind", "--node", X]).await;
        assert!(ok, "{stderr}");
        assert!(
            stdout.contains(&format!("unbound {X} site {PRISON_3}"))
                && stdout.contains(&format!("revoked {X} ")),
            "{stdout}"
        );
        let (ok, stdout, stderr) = hub_command(&hub, &["nodes"]).await;
        assert!(ok, "{stderr}");
        assert!(
            !stdout.contains(&format!("{X}  site "))
                && stdout.contains(&format!("{X}  no site  unbound, certificates revoked")),
            "{stdout}"
        );
        assert!(stdout.contains("gw-ext  site "), "{stdout}");
        let records = hub
            .link
            .store
            .call(|s| s.audit_records(0, 10_000))
            .await
            .expect("audit");
        let unbind = records
            .iter()
            .find(|r| r.entry.action == "node.unbind")
            .expect("the unbind audited");
        assert_eq!(unbind.entry.target, X);
        assert_eq!(unbind.entry.details["site"], PRISON_3);
        assert_eq!(
            unbind.entry.details["revoked"].as_array().map(Vec::len),
            Some(1)
        );

        // The running hub: X's connection is closed (the revocation) ...
        eventually("the gate to close X's connection", || async {
            let (_, _, metrics) = hub.get_text("/metrics").await;
            metrics
                .lines()
                .find_map(|l| l.strip_prefix("vigil_gate_revoked_closed_total "))
                .filter(|v| v.trim() != "0")
                .map(|_| ())
        })
        .await;
        // ... and X's next alarm is not applied: it stays in X's outbox.
        let (after, raise) = x.raise("door-2/forced");
        x.send(vec![LinkEvent::Alert(raise)]).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(held(&hub, after).await.is_none());
        assert!(!x.drained().await, "X's alarm waits in its outbox");
        assert!(held(&hub, before).await.is_some(), "what was applied stays");
        drop(x);
        hub.stop().await;
    })
    .await;
}

/// No child speaks as an ancestor (docs/ARCHITECTURE.md#site-bindings-and-admission): the
/// county's parent is the city (its `[parent]` CA names it) and the ministry is above it
/// (the chain `vigil-hub enroll` records). A child hub of the county — for which an origin
/// not bound at the county is otherwise taken as a node below it — raises alarms under the
/// city's and the ministry's ids and sends audit records under them: each is refused as
/// `ancestor_origin`, counted, audited and alarmed about the child, while its genuine alarm
/// in the same batch is applied and its link does not stall. `vigil-hub nodes` names the
/// hubs above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_child_speaks_as_the_hubs_parent_or_the_hubs_above_it() {
    bounded(async {
        const CITY: &str = "city-guangzhou";
        const TOWN: &str = "town-1";
        let city = Hub::start_config(
            |store| {
                format!(
                    "[node]\nid = \"{CITY}\"\nlevel = \"city\"\nname = \"City\"\n\
                     site = \"ministry/gd/gz\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
                     [mqtt]\nlisten = \"127.0.0.1:0\"\n\n[store]\npath = {:?}\n\n\
                     [[child]]\nnode = \"{HUB}\"\nsite = \"ministry/gd/gz/baiyun\"\nkind = \"hub\"\n",
                    store.display().to_string()
                )
            },
            &[],
        )
        .await;
        let county = Hub::start_config(
            |store| {
                write_parent_identity(&city, store, HUB);
                // As `vigil-hub enroll` records the city's answer.
                vigil_store::Store::open(store)
                    .expect("store")
                    .ancestors_set(&[node(CITY), node("ministry")])
                    .expect("ancestors");
                common::county_toml(store, Some(&city.broker), "")
            },
            &[],
        )
        .await;
        let town_tls = common::child::enroll_as(
            &county,
            TOWN,
            PRISON_3,
            vigil_store::NodeKind::Hub,
        )
        .await;
        let mut town = Gw::start(TOWN, PRISON_3, &county.broker, town_tls);
        let (genuine, raise) = town.raise("door-1/forced");
        let as_ancestor = |origin: &str| {
            let mut g = Gateway::new(origin, PRISON_3);
            let alert = AlertId::generate();
            (
                alert,
                g.raise(alert, "gate/forced", "state", Severity::Critical, false),
            )
        };
        let (as_city, as_city_raise) = as_ancestor(CITY);
        let (as_ministry, as_ministry_raise) = as_ancestor("ministry");
        town.send(vec![
            LinkEvent::Alert(as_city_raise),
            LinkEvent::Alert(as_ministry_raise),
            audit_record(CITY, 1),
            audit_record("ministry", 1),
            LinkEvent::Alert(raise),
        ])
        .await;
        eventually("the child's genuine alarm at the county", || async {
            held(&county, genuine).await.map(|_| ())
        })
        .await;
        eventually("the child's outbox acknowledged", || async {
            town.drained().await.then_some(())
        })
        .await;
        assert_eq!(refused(&county, "ancestor_origin").await, 4);
        assert!(held(&county, as_city).await.is_none());
        assert!(held(&county, as_ministry).await.is_none());
        let origins = county
            .link
            .store
            .call(|s| s.audit_remote_origins())
            .await
            .expect("origins");
        assert!(
            !origins.iter().any(|o| o == CITY || o == "ministry"),
            "{origins:?}"
        );
        eventually("the refusal in the audit log", || async {
            let records = county
                .link
                .store
                .call(|s| s.audit_records(0, 10_000))
                .await
                .expect("audit");
            records
                .iter()
                .any(|r| {
                    r.entry.action == "link.refused"
                        && r.entry.actor == TOWN
                        && r.entry.target == "ancestor_origin"
                })
                .then_some(())
        })
        .await;
        let key = format!("{HUB}/node/{TOWN}/security");
        eventually("the security alarm about the child", || async {
            let (status, body) = county.get("/api/v1/alerts?limit=1000").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["alerts"]
                .as_array()
                .expect("alerts")
                .iter()
                .find(|a| a["key"] == key.as_str())
                .map(|_| ())
        })
        .await;
        let (ok, stdout, stderr) = hub_command(&county, &["nodes"]).await;
        assert!(ok, "{stderr}");
        assert!(
            stdout.contains(&format!("above this hub: {CITY}, ministry")),
            "{stdout}"
        );
        drop(town);
        county.stop().await;
        city.stop().await;
    })
    .await;
}

/// An audit record of a node not bound here yet waits for its binding
/// (docs/ARCHITECTURE.md#site-bindings-and-admission): a child hub of the county forwards a
/// record of gw-new, enrolled below it, before its status reports gw-new's binding. The
/// batch is not applied and not acknowledged (nothing of it, its genuine alarm included, is
/// at the county, and nothing is refused); once the status reports the binding, the
/// child's resend is applied whole — the record is in the county's copy of gw-new's trail.
/// A record of a node bound elsewhere here (gateway X, a direct child) is refused at once,
/// and the rest of its batch applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_record_of_a_node_not_bound_yet_waits_for_its_binding() {
    bounded(async {
        const TOWN: &str = "town-1";
        const NEW: &str = "gw-new";
        let county = Hub::start_config(|store| common::county_toml(store, None, ""), &[]).await;
        let _x_tls = enroll(&county, X, PRISON_3).await;
        let town_site = "ministry/gd/gz/baiyun/town";
        let town_tls =
            common::child::enroll_as(&county, TOWN, town_site, vigil_store::NodeKind::Hub).await;
        let report = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut town = Gw::start_reporting(
            TOWN,
            town_site,
            &county.broker,
            town_tls,
            report.clone(),
            Some(Duration::from_millis(200)),
        );
        let (genuine, raise) = town.raise("door-1/forced");
        town.send(vec![audit_record(NEW, 1), LinkEvent::Alert(raise)])
            .await;
        // Past the child's ack timeout (1 s): sent, held back, sent again.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(held(&county, genuine).await.is_none(), "the batch waits");
        assert!(!town.drained().await, "and is not acknowledged");
        assert_eq!(refused(&county, "foreign_audit").await, 0);

        // The status reports gw-new, enrolled with the child: the resend is applied.
        report
            .lock()
            .expect("report")
            .push(vigil_wire::BindingStatus {
                node: node(NEW),
                site: vigil_core::SitePath::new(town_site).expect("site"),
                parent: node(TOWN),
            });
        eventually("the child's alarm at the county", || async {
            held(&county, genuine).await.map(|_| ())
        })
        .await;
        eventually("the child's outbox acknowledged", || async {
            town.drained().await.then_some(())
        })
        .await;
        let origins = county
            .link
            .store
            .call(|s| s.audit_remote_origins())
            .await
            .expect("origins");
        assert!(origins.iter().any(|o| o == NEW), "{origins:?}");
        assert_eq!(refused(&county, "foreign_audit").await, 0);

        // A record of a node bound elsewhere here: refused for good, the batch applied.
        let (second, raise) = town.raise("door-2/forced");
        town.send(vec![audit_record(X, 1), LinkEvent::Alert(raise)])
            .await;
        eventually("the child's second alarm at the county", || async {
            held(&county, second).await.map(|_| ())
        })
        .await;
        eventually("the child's outbox acknowledged again", || async {
            town.drained().await.then_some(())
        })
        .await;
        assert_eq!(refused(&county, "foreign_audit").await, 1);
        drop(town);
        county.stop().await;
    })
    .await;
}
