//! The demo's promised intrusion incident, end to end: the north fence's zone-3 alarm and the
//! east barrier's beam, on a simulated facility (vigil-sim), reach the gateway agent, which
//! runs with the perimeter devices of `demo/agent.toml` exactly as the demo writes them
//! (their `zone`/`zones` lines untouched), fuses them into one incident in the site zone they
//! share, and forwards it over mTLS to the county hub: the hub shows one incident in
//! `north-perimeter` whose members are the fence alarm and the barrier alarm.
//!
//! The fence controller's profile names its own zone `fence-zone-3` for that input; the
//! installer's `zone` in agent.toml must win, or the two alarms land in different zones and
//! never fuse (docs/ARCHITECTURE.md#correlation-and-incidents).

mod support;

use std::path::Path;
use std::time::Duration;

use support::*;

#[test]
fn node_process() {
    node_entry();
}

/// The site zone the demo gives the fence and the barrier.
const ZONE: &str = "north-perimeter";
/// The demo's perimeter devices this test simulates.
const DEVICES: [&str; 2] = ["fence-north", "barrier-east"];

/// The two perimeter devices of `crates/vigil-sim/examples/facility.toml`, with its values,
/// but their alarms raised at once and held: the fence's zone 3 first, then the barrier.
/// (Held, so that the agent sees both however long the hub and the enrollment take.)
fn sim_toml() -> String {
    format!(
        r#"seed = 2026
[profiles]
dirs = ["{root}/../device-profiles"]

[[device]]
id = "fence-north"
profile = "perimeter-fence-controller"
listen = "127.0.0.1:0"
[device.points.zone3_alarm]
kind = "event"
at = "1s"
[device.points.supply_voltage]
kind = "noise"
mean = 24.2
amplitude = 0.15
[device.points.zone1_vibration_level]
kind = "sine"
mean = 20
amplitude = 8
period = "90s"
noise = 2
[device.points.sensitivity]
kind = "constant"
value = 6

[[device]]
id = "barrier-east"
profile = "microwave-barrier"
listen = "127.0.0.1:0"
[device.points.intrusion]
kind = "event"
at = "2s"
[device.points.signal_level]
kind = "noise"
mean = -1.0
amplitude = 0.3
[device.points.supply_voltage]
kind = "noise"
mean = 13.6
amplitude = 0.05
"#,
        root = env!("CARGO_MANIFEST_DIR")
    )
}

/// The `[node]` section and the `[[modbus.device]]` entries of `DEVICES` from the demo's
/// `agent.toml` text, verbatim but for their `address` (the simulator's) and a shorter poll.
fn demo_sections(demo: &str, addr: impl Fn(&str) -> String) -> String {
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    for line in demo.lines() {
        if line.trim_start().starts_with('[') || blocks.is_empty() {
            blocks.push(Vec::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push(line);
        }
    }
    let mut out = String::new();
    for block in blocks {
        let header = block.first().map_or("", |l| l.trim());
        let device = block.iter().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "id").then(|| v.trim().trim_matches('"'))
        });
        match (header, device) {
            ("[node]", _) => {}
            ("[[modbus.device]]", Some(id)) if DEVICES.contains(&id) => {}
            _ => continue,
        }
        for line in block {
            let key = line.split_once('=').map(|(k, _)| k.trim());
            match (key, device) {
                (Some("address"), Some(id)) => out += &format!("address = \"{}\"\n", addr(id)),
                (Some("poll"), Some(_)) => out += "poll = \"200ms\"\n",
                _ => {
                    out += line;
                    out += "\n";
                }
            }
        }
    }
    out
}

#[test]
fn the_demos_fence_and_barrier_alarms_fuse_into_one_intrusion_incident_on_the_hub() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let facility =
        vigil_sim::Facility::parse(Path::new("sim.toml"), &sim_toml()).expect("valid sim config");
    let sim = rt
        .block_on(vigil_sim::Simulator::start(facility))
        .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let (hub_http, broker, agent_http) = (free_port(), free_port(), free_port());
    let hub_addr = format!("127.0.0.1:{hub_http}");

    let hub_cfg = hub_config(
        dir.path(),
        "county-baiyun",
        "county",
        hub_http,
        &format!("listen = \"127.0.0.1:{broker}\""),
        None,
    );
    let token = hub_token(&hub_cfg);
    let mut hub = spawn_node("hub", &hub_cfg, &dir.path().join("hub.log"));
    wait_healthy(&hub_addr, &hub);

    let demo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../demo/agent.toml"))
        .expect("demo/agent.toml");
    let sections = demo_sections(&demo, |id| {
        sim.addr(id).expect("a simulated device").to_string()
    });
    for id in DEVICES {
        assert!(
            sections.contains(&format!("id = \"{id}\"")),
            "demo/agent.toml has no device {id}:\n{sections}"
        );
    }
    let agent_cfg = dir.path().join("agent.toml");
    std::fs::write(
        &agent_cfg,
        format!(
            "{sections}\n[uplink]\nurl = \"mqtt://127.0.0.1:{broker}\"\n\n[store]\npath = \"agent.db\"\n\n[profiles]\ndirs = [\"{root}/../device-profiles\"]\n\n[metrics]\nlisten = \"127.0.0.1:{agent_http}\"\n",
            root = env!("CARGO_MANIFEST_DIR")
        ),
    )
    .expect("write agent config");
    let node = demo
        .lines()
        .find_map(|l| l.strip_prefix("id = \"")?.strip_suffix('"'))
        .expect("[node] id in demo/agent.toml")
        .to_owned();
    enroll_gateway(&hub_cfg, &hub_addr, &agent_cfg, &node);
    let mut agent = spawn_node("agent", &agent_cfg, &dir.path().join("agent.log"));

    let fence_key = format!("{node}/fence-north/zone3_alarm/state");
    let barrier_key = format!("{node}/barrier-east/intrusion/state");
    let incident_key = format!("{node}/zone:{ZONE}/incident");
    // The incident, and both alarms marked as its members, on the hub.
    let alerts = wait_for(Duration::from_secs(40), || {
        let alerts = all_alerts(&hub_addr, &token)?;
        let incident = alerts.iter().find(|a| a["key"] == incident_key.as_str())?;
        let members = alerts
            .iter()
            .filter(|a| a["incident"] == incident["id"])
            .count();
        (members >= 2).then_some(alerts)
    })
    .unwrap_or_else(|| {
        panic!(
            "no incident in {ZONE} with both members on the hub\nhub alerts: {:#?}\nagent log:\n{}\nhub log:\n{}",
            all_alerts(&hub_addr, &token),
            agent.log(),
            hub.log()
        )
    });

    let incidents: Vec<&serde_json::Value> =
        alerts.iter().filter(|a| a["kind"] == "incident").collect();
    assert_eq!(incidents.len(), 1, "one incident: {incidents:#?}");
    let incident = incidents[0];
    assert_eq!(incident["key"], incident_key.as_str());
    assert_eq!(incident["zone"], ZONE);
    assert_eq!(incident["active"], true);
    assert_eq!(incident["severity"], "critical");
    assert_eq!(incident["value"], 2, "two members: {incident}");
    let message = incident["message"].as_str().unwrap_or("");
    assert!(
        message.contains("fence-north/zone3_alarm") && message.contains("barrier-east/intrusion"),
        "{message}"
    );

    let mut members: Vec<&str> = alerts
        .iter()
        .filter(|a| a["incident"] == incident["id"])
        .filter_map(|a| a["key"].as_str())
        .collect();
    members.sort_unstable();
    let mut want = [fence_key.as_str(), barrier_key.as_str()];
    want.sort_unstable();
    assert_eq!(members, want);
    for key in want {
        let member = alerts
            .iter()
            .find(|a| a["key"] == key)
            .expect("member alert");
        assert_eq!(member["zone"], ZONE, "the installer's zone: {member}");
        assert_eq!(member["severity"], "critical", "{member}");
    }

    assert!(agent.stop(), "agent stops cleanly:\n{}", agent.log());
    assert!(hub.stop(), "hub stops cleanly:\n{}", hub.log());
    rt.block_on(sim.stop());
}
