//! The children's audit trails at a hub: `GET /api/v1/audit` for auditors and admins only
//! (newest first, keyset-paged, one node's with `node`), and `vigil-hub audit verify` over the
//! hub's own log and each trail it holds (`--node` for one) — exit 1 naming the node and the
//! record after someone edits a child's record in the hub's file.

mod common;

use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use hyper::StatusCode;
use serde_json::json;
use vigil_core::{Lane, NodeId, Timestamp};
use vigil_hub::auth::Role;
use vigil_store::{AuditEntry, AuditForward, InboundBatch, Store};
use vigil_wire::{AuditEvent, LinkEvent};

use common::{county_toml, Hub};

const GW: &str = "gw-prison-3";

/// Five records of a gateway's audit log, as its uplink sends them.
fn gateway_trail() -> Vec<AuditEvent> {
    let mut gw = Store::open_in_memory().expect("gateway store");
    gw.set_audit_forward(Some(&AuditForward {
        link: "parent".into(),
        origin: NodeId::new(GW).expect("node"),
    }))
    .expect("forward");
    for n in 1..=5_i64 {
        gw.audit_append(&AuditEntry {
            at: Timestamp::from_millis(1_795_000_000_000 + n),
            node: GW.into(),
            actor: format!("bundle b{n}.vgl"),
            action: "update.refuse".into(),
            target: format!("b{n}.vgl"),
            details: json!({ "bundle": format!("b{n}.vgl"), "reason": "bad signature" }),
        })
        .expect("append");
    }
    gw.outbox_read("parent", Lane::Normal, 0, 100, usize::MAX)
        .expect("read")
        .into_iter()
        .map(
            |r| match serde_json::from_slice(&r.payload).expect("link event") {
                LinkEvent::Audit(r) => r,
                LinkEvent::Alert(e) => panic!("an alert event {e:?}"),
                other => panic!("not an audit record: {other:?}"),
            },
        )
        .collect()
}

/// Commits the gateway's batch into the (running) hub's store, as its downlinks would.
fn receive(store_path: &std::path::Path, trail: &[AuditEvent]) {
    let mut store = Store::open(store_path).expect("open hub store");
    let peer = NodeId::new(GW).expect("node");
    let out = store
        .apply_batches_and_forward(
            &[InboundBatch {
                peer: &peer,
                lane: Lane::Normal,
                first_seq: 1,
                events: &[],
                audit: trail,
                bodies: None,
                directives: Default::default(),
            }],
            None,
            |_, _| None,
        )
        .expect("apply");
    assert_eq!(out[0].audit.applied, trail.len());
}

fn verify(config: &std::path::Path, node: Option<&str>) -> (Option<i32>, String, String) {
    let mut cmd = Command::cargo_bin("vigil-hub").expect("the binary is built");
    cmd.args(["audit", "verify", "--config"]).arg(config);
    if let Some(node) = node {
        cmd.args(["--node", node]);
    }
    let out = cmd.output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_api_is_for_auditors_and_admins() {
    let hub = Hub::start(false, &[]).await;
    receive(&hub.store_path, &gateway_trail());
    for (name, role, allowed) in [
        ("ada.auditor", Role::Auditor, true),
        ("adm.admin", Role::Admin, true),
        ("vic.viewer", Role::Viewer, false),
        ("ola.operator", Role::Operator, false),
        ("sue.supervisor", Role::Supervisor, false),
        ("ian.installer", Role::Installer, false),
    ] {
        let session = hub.session(name, role, "ministry").await;
        let (status, body) = hub.get_as("/api/v1/audit", &session.cookie_only()).await;
        if !allowed {
            assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {body}");
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        let records = body["records"].as_array().expect("records");
        // The hub's own (token, users, sign-ins, the denials above) and the gateway's five.
        assert!(records.iter().any(|r| r["node"] == GW), "{body}");
        assert!(
            records.iter().any(|r| r["node"] == "county-baiyun"),
            "{body}"
        );
        let at: Vec<&str> = records
            .iter()
            .map(|r| r["at"].as_str().expect("at"))
            .collect();
        assert!(at.windows(2).all(|w| w[0] >= w[1]), "newest first: {at:?}");
    }
    let auditor = hub.session("ada.auditor", Role::Auditor, "ministry").await;
    let headers = auditor.cookie_only();
    // One node's trail, two at a time, newest first, following `next`.
    let (status, page) = hub
        .get_as(&format!("/api/v1/audit?node={GW}&limit=2"), &headers)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut seqs: Vec<u64> = Vec::new();
    let mut page = page;
    loop {
        for r in page["records"].as_array().expect("records") {
            assert_eq!(r["node"], GW);
            assert_eq!(r["action"], "update.refuse");
            assert_eq!(r["details"]["reason"], "bad signature");
            assert_eq!(r["hash"].as_str().map(str::len), Some(64));
            seqs.push(r["seq"].as_u64().expect("seq"));
        }
        let Some(next) = page["next"].as_str() else {
            break;
        };
        let (status, more) = hub
            .get_as(
                &format!("/api/v1/audit?node={GW}&limit=2&after={next}"),
                &headers,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{more}");
        page = more;
    }
    assert_eq!(seqs, [5, 4, 3, 2, 1]);
    for bad in ["limit=0", "limit=abc", "after=nonsense", "colour=red"] {
        let (status, body) = hub.get_as(&format!("/api/v1/audit?{bad}"), &headers).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_checks_the_trails_the_hub_holds_and_names_a_tampered_record() {
    let hub = Hub::start(false, &[]).await;
    let store_path = hub.store_path.clone();
    receive(&store_path, &gateway_trail());
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("hub.toml");
    std::fs::write(&config, county_toml(&store_path, None, "")).expect("write config");

    let (code, stdout, stderr) = verify(&config, None);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("audit chain ok: "), "{stdout}");
    assert!(
        lines[1].starts_with(&format!("node {GW}: audit chain ok: 5 records, head ")),
        "{stdout}"
    );
    let (code, stdout, _) = verify(&config, Some(GW));
    assert_eq!(code, Some(0));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let (code, _, stderr) = verify(&config, Some("gw-nowhere"));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("no audit records of node gw-nowhere"),
        "{stderr}"
    );

    // Someone with the hub's file rewrites the reason of the gateway's third record.
    let conn = rusqlite::Connection::open(&store_path).expect("open raw");
    conn.execute_batch(&format!(
        "DROP TRIGGER audit_remote_no_update;
         UPDATE audit_remote SET details = '{{\"reason\":\"ok\"}}' WHERE origin = '{GW}' AND seq = 3;"
    ))
    .expect("tamper");
    drop(conn);
    let (code, stdout, stderr) = verify(&config, None);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("audit chain ok: "),
        "own log intact: {stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "node {GW}: audit chain broken at record 3: its hash does not match"
        )),
        "{stdout}"
    );
    let (code, _, _) = verify(&config, Some("county-baiyun"));
    assert_eq!(code, Some(0), "the hub's own log alone is intact");
    hub.stop().await;
}
