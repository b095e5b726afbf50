//! The audit log end to end: operator actions over the API each leave an audit record,
//! committed with the action, and `vigil-hub audit verify` checks the chain — ok, then
//! exit 1 naming the record a test tampered with; config errors exit 2.

mod common;

use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use hyper::StatusCode;
use vigil_core::{AlertEventBody, AlertId, Severity};
use vigil_hub::auth::Role;
use vigil_store::{AuditReport, Store};

use common::{county_toml, Gateway, Hub, PRISON_3};

fn hub_cmd() -> Command {
    Command::cargo_bin("vigil-hub").expect("the binary is built")
}

fn verify(config: &std::path::Path) -> (Option<i32>, String, String) {
    let out = hub_cmd()
        .args(["audit", "verify", "--config"])
        .arg(config)
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_are_audited_and_the_cli_verifies_the_chain() {
    let mut gw = Gateway::new("gw-prison-3", PRISON_3);
    let (fence, door) = (AlertId::generate(), AlertId::generate());
    let seed = vec![
        gw.raise(
            fence,
            "fence-north/zone1_alarm",
            "state",
            Severity::Critical,
            false,
        ),
        gw.raise(door, "door-3/forced", "state", Severity::Major, true),
        gw.event(door, AlertEventBody::Acknowledged { comment: None }),
        gw.clear(door),
    ];
    let hub = Hub::start(false, &seed).await;
    let zhang = hub
        .session("zhang.wei", Role::Supervisor, "ministry/gd")
        .await;
    let user = zhang.headers();
    let url = |id: AlertId, action: &str| format!("/api/v1/alerts/{id}/{action}");
    let actions: [(AlertId, &str, &str); 7] = [
        (fence, "ack", r#"{"comment": "on it"}"#),
        (
            fence,
            "shelve",
            r#"{"for": "30m", "reason": "fence maintenance"}"#,
        ),
        (fence, "unshelve", ""),
        (fence, "comment", r#"{"text": "guard sent"}"#),
        (fence, "assign", r#"{"to": "response-team-b"}"#),
        (fence, "close", r#"{"reason": "wildlife"}"#),
        (door, "reset", ""),
    ];
    let mut event_ids = Vec::new();
    for (alert, action, body) in actions {
        let (status, resp) = hub.post(&url(alert, action), &user, body).await;
        assert_eq!(status, StatusCode::OK, "{action}: {resp}");
        event_ids.push(resp["event"]["id"].as_str().expect("event id").to_owned());
    }
    // A refused action is not audited.
    let (status, _) = hub.post(&url(fence, "ack"), &user, "").await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The store is read beside the running hub (WAL): stopping it removes its directory.
    let store_path = hub.store_path.clone();
    let store = Store::open(&store_path).expect("open store");
    let all = store.audit_records(0, 100).expect("records");
    // Before the actions: the harness's token, the user added and signed in.
    let setup: Vec<&str> = all
        .iter()
        .take(3)
        .map(|r| r.entry.action.as_str())
        .collect();
    assert_eq!(setup, ["token_add", "user_add", "sign_in"]);
    assert_eq!(all[2].entry.actor, "zhang.wei");
    assert_eq!(all[2].entry.details["outcome"], "success");
    let records = &all[3..];
    assert_eq!(records.len(), actions.len());
    for (i, (rec, (alert, action, _))) in records.iter().zip(actions).enumerate() {
        assert_eq!(rec.seq, i as u64 + 4);
        assert_eq!(rec.entry.actor, "zhang.wei");
        assert_eq!(rec.entry.action, action);
        assert_eq!(rec.entry.target, alert.to_string());
        assert_eq!(rec.entry.node, "county-baiyun");
        assert_eq!(rec.entry.details["event"], event_ids[i], "{action}");
    }
    let details = |i: usize| &records[i].entry.details;
    assert_eq!(details(0)["comment"], "on it");
    assert_eq!(details(1)["reason"], "fence maintenance");
    assert!(details(1)["until"]
        .as_str()
        .is_some_and(|u| u.ends_with('Z')));
    assert_eq!(details(3)["text"], "guard sent");
    assert_eq!(details(4)["to"], "response-team-b");
    assert_eq!(details(5)["reason"], "wildlife");
    let AuditReport::Intact { head, .. } = store.audit_verify().expect("verify") else {
        panic!("the chain is intact");
    };
    drop(store);

    // The CLI: ok, with the count and the head.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("hub.toml");
    std::fs::write(&config, county_toml(&store_path, None, "")).expect("write config");
    let (code, stdout, stderr) = verify(&config);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout.trim(),
        format!("audit chain ok: 10 records, head {}", head.hash_hex())
    );

    // Someone with the file rewrites who closed the alert.
    let conn = rusqlite::Connection::open(&store_path).expect("open raw");
    conn.execute_batch(
        "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'li.na' WHERE seq = 9;",
    )
    .expect("tamper");
    drop(conn);
    let (code, stdout, stderr) = verify(&config);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("audit chain broken at record 9: its hash does not match"),
        "{stdout}"
    );
    hub.stop().await;
}

#[test]
fn verify_config_errors_exit_2_and_a_missing_store_is_not_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("hub.toml");
    std::fs::write(&config, "[node]\nid = \"x\"\n").expect("write");
    let (code, _, stderr) = verify(&config);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("error:"), "{stderr}");

    let store = dir.path().join("none.db");
    std::fs::write(&config, county_toml(&store, None, "")).expect("write");
    let (code, _, stderr) = verify(&config);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no store at"), "{stderr}");
    assert!(!store.exists());
}
