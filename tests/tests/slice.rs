//! The end-to-end slice: a value crosses a limit on a simulated facility, the gateway agent
//! raises an alert, the county hub receives it without loss, an operator acknowledges it on
//! the hub's API, and the acknowledgement flows back down to the gateway that raised it.

mod support;

use std::path::Path;
use std::time::Duration;

use support::*;

#[test]
fn node_process() {
    node_entry();
}

fn sim_toml() -> String {
    format!(
        r#"seed = 3
[profiles]
dirs = ["{root}/../device-profiles"]

[[device]]
id = "doors-block-a"
profile = "door-access-controller"
listen = "127.0.0.1:0"
[device.points.door2_forced]
kind = "event"
at = "3s"

[[device]]
id = "env-cellblock"
profile = "temp-humidity-sensor"
listen = "127.0.0.1:0"
[device.points.temperature]
kind = "step"
before = 24.0
after = 45.0
at = "3s"
"#,
        root = env!("CARGO_MANIFEST_DIR")
    )
}

pub fn agent_toml(
    dir: &Path,
    broker_port: u16,
    http: u16,
    devices: &[(&str, &str, String)],
) -> std::path::PathBuf {
    let mut text = format!(
        r#"[node]
id = "gw-prison-3"
site = "ministry/guangdong/guangzhou/baiyun/prison-3"

[uplink]
url = "mqtt://127.0.0.1:{broker_port}"

[store]
path = "agent.db"

[profiles]
dirs = ["{root}/../device-profiles"]

[metrics]
listen = "127.0.0.1:{http}"

[[rule]]
points = ["env-cellblock/temperature"]
limits = {{ hh = 40, h = 32, deadband = 0.5, delay = "1s" }}
"#,
        root = env!("CARGO_MANIFEST_DIR")
    );
    for (id, profile, addr) in devices {
        text += &format!("\n[[modbus.device]]\nid = \"{id}\"\nprofile = \"{profile}\"\ntransport = \"tcp\"\naddress = \"{addr}\"\npoll = \"250ms\"\nzone = \"block-a\"\n");
    }
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("write agent config");
    path
}

#[test]
fn a_door_forced_and_a_temperature_limit_reach_the_hub_and_the_ack_comes_back() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let facility =
        vigil_sim::Facility::parse(Path::new("sim.toml"), &sim_toml()).expect("valid sim config");
    let sim = rt
        .block_on(vigil_sim::Simulator::start(facility))
        .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let (hub_http, broker, agent_http) = (free_port(), free_port(), free_port());
    let hub_addr = format!("127.0.0.1:{hub_http}");
    let agent_addr = format!("127.0.0.1:{agent_http}");

    let hub_cfg = hub_config(
        dir.path(),
        "county-baiyun",
        "county",
        hub_http,
        &format!("listen = \"127.0.0.1:{broker}\""),
        None,
    );
    // A duty officer who may act on the county, and a token for reading.
    hub_user(
        &hub_cfg,
        "duty-officer",
        vigil_hub::auth::Role::Operator,
        "ministry/guangdong/guangzhou/baiyun",
        "the duty officer's password",
    );
    let token = hub_token(&hub_cfg);
    let mut hub = spawn_node("hub", &hub_cfg, &dir.path().join("hub.log"));
    assert!(
        wait_for(Duration::from_secs(20), || http(
            "GET",
            &hub_addr,
            "/healthz",
            None,
            &[]
        )
        .filter(|(s, _)| *s == 200))
        .is_some(),
        "hub up: {}",
        hub.log()
    );

    let devices = [
        (
            "doors-block-a",
            "door-access-controller",
            sim.addr("doors-block-a").expect("bound").to_string(),
        ),
        (
            "env-cellblock",
            "temp-humidity-sensor",
            sim.addr("env-cellblock").expect("bound").to_string(),
        ),
    ];
    let agent_cfg = agent_toml(dir.path(), broker, agent_http, &devices);
    // The installer enrolls the gateway: its uplink is then mTLS to the hub's gated broker.
    enroll_gateway(&hub_cfg, &hub_addr, &agent_cfg, "gw-prison-3");
    let mut agent = spawn_node("agent", &agent_cfg, &dir.path().join("agent.log"));

    // The door forced at 3 s: critical, latching, on the hub.
    let forced = wait_for(Duration::from_secs(40), || {
        hub_json(&hub_addr, "/api/v1/alerts", &token)?["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["key"] == "gw-prison-3/doors-block-a/door2_forced/state")
            .cloned()
    })
    .unwrap_or_else(|| {
        panic!(
            "door alert reached the hub\nagent log:\n{}\nhub log:\n{}",
            agent.log(),
            hub.log()
        )
    });
    assert_eq!(forced["severity"], "critical");
    assert_eq!(forced["state"], "active_unack");
    assert_eq!(forced["latching"], true);
    assert_eq!(
        forced["site"],
        "ministry/guangdong/guangzhou/baiyun/prison-3"
    );
    assert_eq!(forced["source"]["device"], "doors-block-a");

    // 45 °C above HH 40 after the 1 s delay: both H and HH raised, HH major.
    let hh = wait_for(Duration::from_secs(30), || {
        hub_json(&hub_addr, "/api/v1/alerts", &token)?["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["key"] == "gw-prison-3/env-cellblock/temperature/limit_hh")
            .cloned()
    })
    .expect("HH alert reached the hub");
    assert_eq!(hh["severity"], "major");
    assert!(hh["value"].as_f64().is_some_and(|v| v > 40.0), "{hh}");

    // The operator signs in and acknowledges the door on the hub…
    let id = forced["id"].as_str().expect("id").to_owned();
    let (cookie, csrf) =
        sign_in(&hub_addr, "duty-officer", "the duty officer's password").expect("signed in");
    let (status, body) = http(
        "POST",
        &hub_addr,
        &format!("/api/v1/alerts/{id}/ack"),
        Some(r#"{"comment":"guard sent"}"#),
        &[("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())],
    )
    .expect("ack");
    assert_eq!(status, 200, "{body}");
    let ack: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(ack["event"]["actor"]["user"], "duty-officer");
    // …and the gateway that raised it receives the acknowledgement.
    let on_agent = wait_for(Duration::from_secs(30), || {
        get_json(&agent_addr, "/api/v1/alerts")?["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["id"] == id.as_str() && a["acknowledged"] == true)
            .cloned()
    })
    .unwrap_or_else(|| {
        panic!(
            "ack reached the gateway\nagent log:\n{}\nhub log:\n{}",
            agent.log(),
            hub.log()
        )
    });
    assert_eq!(on_agent["state"], "active_ack");

    // The hub sees its gateway online in the tree; stopping the agent shows it offline.
    let online = wait_for(Duration::from_secs(20), || {
        let tree = hub_json(&hub_addr, "/api/v1/tree", &token)?;
        tree["children"]
            .as_array()?
            .iter()
            .find(|c| c["id"] == "gw-prison-3" && c["state"] == "online")
            .cloned()
    });
    assert!(online.is_some(), "gateway online in the tree");
    assert!(
        agent.stop(),
        "agent stops cleanly on SIGTERM:\n{}",
        agent.log()
    );
    let offline = wait_for(Duration::from_secs(20), || {
        let tree = hub_json(&hub_addr, "/api/v1/tree", &token)?;
        tree["children"]
            .as_array()?
            .iter()
            .find(|c| c["id"] == "gw-prison-3" && c["state"] == "offline")
            .cloned()
    });
    assert!(
        offline.is_some(),
        "gateway offline in the tree after it stopped"
    );
    assert!(hub.stop(), "hub stops cleanly:\n{}", hub.log());
    rt.block_on(sim.stop());
}
