//! Fault tests of the slice, each bounded in time and count:
//! - the agent is SIGKILLed at random moments while it raises 10,000 alerts, and the hub is
//!   killed and restarted (with its embedded broker, or Mosquitto is restarted) mid-stream:
//!   the hub ends with every alert exactly once;
//! - the hub is down while the gateway raises: the agent's outbox holds everything, and when
//!   the hub returns the critical lane drains first.
//!
//! Each runs against the hub's embedded broker and against Mosquitto.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use support::*;

#[test]
fn node_process() {
    node_entry();
}

const POINTS: usize = 2000;

/// A device model of `POINTS` alarm inputs; every tenth is critical (the critical lane).
fn alarm_block_profile(dir: &Path) -> PathBuf {
    let mut y = String::from("name: alarm-block\nmanufacturer: test\nmodel: ab\npoints:\n");
    for i in 0..POINTS {
        let severity = if i % 10 == 0 { "critical" } else { "minor" };
        y += &format!("  - {{ name: a{i:04}, table: discrete_input, address: {i}, type: bool, alarm: {{ state: true, severity: {severity}, message: \"alarm {i}\" }} }}\n");
    }
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles).expect("mkdir");
    std::fs::write(profiles.join("alarm-block.yaml"), y).expect("write profile");
    profiles
}

/// A simulated facility of `devices` alarm blocks whose every input goes into alarm at `at`.
fn start_sim(
    rt: &tokio::runtime::Runtime,
    profiles: &Path,
    devices: usize,
    at: &str,
) -> vigil_sim::SimHandle {
    let mut text = format!(
        "seed = 9\n[profiles]\ndirs = [\"{}\"]\n",
        profiles.display()
    );
    for d in 0..devices {
        text += &format!("\n[[device]]\nid = \"block-{d}\"\nprofile = \"alarm-block\"\nlisten = \"127.0.0.1:0\"\n");
        for i in 0..POINTS {
            text += &format!("[device.points.a{i:04}]\nkind = \"event\"\nat = \"{at}\"\n");
        }
    }
    let facility =
        vigil_sim::Facility::parse(Path::new("sim.toml"), &text).expect("valid sim config");
    rt.block_on(vigil_sim::Simulator::start(facility))
        .expect("simulator")
}

fn agent_toml(
    dir: &Path,
    profiles: &Path,
    broker: &str,
    http: u16,
    sim: &vigil_sim::SimHandle,
) -> PathBuf {
    let mut text = format!(
        "[node]\nid = \"gw-1\"\nsite = \"ministry/p/c/county/prison-1\"\n\n[uplink]\nurl = \"{broker}\"\n\n[store]\npath = \"agent.db\"\n\n[profiles]\ndirs = [\"{}\"]\n\n[metrics]\nlisten = \"127.0.0.1:{http}\"\n",
        profiles.display()
    );
    for d in sim.devices() {
        text += &format!(
            "\n[[modbus.device]]\nid = \"{}\"\nprofile = \"alarm-block\"\ntransport = \"tcp\"\naddress = \"{}\"\npoll = \"300ms\"\n",
            d.id,
            sim.addr(&d.id).expect("bound")
        );
    }
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("write");
    path
}

/// Counts the raised events and alerts in a hub's store (read-only; the hub may be running).
/// A store the hub has not created yet counts as empty.
fn hub_store_counts(db: &Path) -> (i64, i64, HashMap<String, i64>) {
    read_counts(db).unwrap_or_default()
}

/// The gateway gw-1's raises, alerts and alerts per key in the hub's store (the hub's own
/// alarms about its nodes left out).
fn read_counts(db: &Path) -> rusqlite::Result<(i64, i64, HashMap<String, i64>)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let raised: i64 = conn.query_row(
        "SELECT count(*) FROM events WHERE kind = 'raised' AND origin = 'gw-1'",
        [],
        |r| r.get(0),
    )?;
    let alerts: i64 = conn.query_row(
        "SELECT count(*) FROM alerts WHERE key LIKE 'gw-1/%'",
        [],
        |r| r.get(0),
    )?;
    let mut per_key = HashMap::new();
    let mut stmt =
        conn.prepare("SELECT key, count(*) FROM alerts WHERE key LIKE 'gw-1/%' GROUP BY key")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (k, n) = row?;
        per_key.insert(k, n);
    }
    Ok((raised, alerts, per_key))
}

enum BrokerKind {
    Embedded,
    Mosquitto,
}

fn kill_storm(kind: BrokerKind) {
    let started = Instant::now();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let profiles = alarm_block_profile(dir.path());
    let devices = 5;
    let sim = start_sim(&rt, &profiles, devices, "1s");
    let total = devices * POINTS;
    let (hub_http, broker_port, agent_http) = (free_port(), free_port(), free_port());
    let hub_addr = format!("127.0.0.1:{hub_http}");
    // Every link is mTLS: the embedded broker behind the hub's gate, or Mosquitto with the
    // hub's `broker-config` (its CA, ACL and CRL); the gateway enrolls once the hub is up.
    let broker_line = match kind {
        BrokerKind::Embedded => format!("listen = \"127.0.0.1:{broker_port}\""),
        BrokerKind::Mosquitto => format!("url = \"mqtts://127.0.0.1:{broker_port}\""),
    };
    let hub_cfg = hub_config(
        dir.path(),
        "county-1",
        "county",
        hub_http,
        &broker_line,
        None,
    );
    let mosquitto_conf = matches!(kind, BrokerKind::Mosquitto)
        .then(|| secure_broker_config(&hub_cfg, &dir.path().join("mosquitto")));
    let mut mosquitto = mosquitto_conf
        .as_ref()
        .map(|conf| Mosquitto::start_conf(conf, broker_port));
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
        "hub up"
    );

    let agent_cfg = agent_toml(
        dir.path(),
        &profiles,
        &format!("mqtt://127.0.0.1:{broker_port}"),
        agent_http,
        &sim,
    );
    enroll_gateway(&hub_cfg, &hub_addr, &agent_cfg, "gw-1");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xdead);
    // Six kills of the agent at random moments while it raises and sends.
    for round in 0..6 {
        let mut agent = spawn_node("agent", &agent_cfg, &dir.path().join("agent.log"));
        std::thread::sleep(Duration::from_millis(rng.random_range(300..2500)));
        agent.kill();
        // Midway, the hub (and its embedded broker) is killed too, or Mosquitto restarted.
        if round == 3 {
            hub.kill();
            if let (Some(m), Some(conf)) = (mosquitto.take(), &mosquitto_conf) {
                drop(m);
                mosquitto = Some(Mosquitto::start_conf(conf, broker_port));
            }
            hub = spawn_node("hub", &hub_cfg, &dir.path().join("hub.log"));
        }
    }
    let agent = spawn_node("agent", &agent_cfg, &dir.path().join("agent.log"));
    let db = dir.path().join("county-1.db");
    let done = wait_for(Duration::from_secs(240), || {
        let (raised, alerts, _) = hub_store_counts(&db);
        (raised as usize >= total && alerts as usize >= total).then_some(())
    });
    assert!(
        done.is_some(),
        "all alerts reached the hub: {:?}\nagent log tail:\n{}",
        hub_store_counts(&db).0,
        tail(&agent.log())
    );
    // Let anything still in flight land, then check nothing arrived twice.
    std::thread::sleep(Duration::from_secs(2));
    let (raised, alerts, per_key) = hub_store_counts(&db);
    assert_eq!(alerts as usize, total, "every alert exactly once");
    assert_eq!(raised as usize, total, "one raise per alert");
    assert_eq!(per_key.len(), total);
    assert!(per_key.values().all(|n| *n == 1), "no key has two alerts");
    // The gateway's alerts; the hub's own (node_offline about gw-1 while it was killed)
    // are not counted.
    let listed = all_alerts(&hub_addr, &token).expect("API lists");
    let listed = listed
        .iter()
        .filter(|a| a["key"].as_str().is_some_and(|k| k.starts_with("gw-1/")))
        .count();
    assert_eq!(listed, total, "the API lists every alert");
    drop(agent);
    drop(hub);
    rt.block_on(sim.stop());
    eprintln!("kill storm took {:?}", started.elapsed());
}

fn tail(s: &str) -> String {
    s.lines()
        .rev()
        .take(30)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn sigkilled_agent_and_restarted_hub_lose_and_duplicate_nothing_embedded_broker() {
    kill_storm(BrokerKind::Embedded);
}

#[test]
fn sigkilled_agent_and_restarted_broker_lose_and_duplicate_nothing_mosquitto() {
    kill_storm(BrokerKind::Mosquitto);
}

fn hub_down(kind: BrokerKind) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let profiles = alarm_block_profile(dir.path());
    let devices = 2;
    let sim = start_sim(&rt, &profiles, devices, "500ms");
    let total = devices * POINTS;
    let (hub_http, broker_port, agent_http) = (free_port(), free_port(), free_port());
    let agent_addr = format!("127.0.0.1:{agent_http}");
    let hub_addr = format!("127.0.0.1:{hub_http}");
    let broker_line = match kind {
        BrokerKind::Embedded => format!("listen = \"127.0.0.1:{broker_port}\""),
        BrokerKind::Mosquitto => format!("url = \"mqtts://127.0.0.1:{broker_port}\""),
    };
    let hub_cfg = hub_config(
        dir.path(),
        "county-1",
        "county",
        hub_http,
        &broker_line,
        None,
    );
    let _mosquitto = matches!(kind, BrokerKind::Mosquitto).then(|| {
        let conf = secure_broker_config(&hub_cfg, &dir.path().join("mosquitto"));
        Mosquitto::start_conf(&conf, broker_port)
    });
    // The gateway is enrolled (the hub up for that only), then raises everything while its
    // hub is down.
    let agent_cfg = agent_toml(
        dir.path(),
        &profiles,
        &format!("mqtt://127.0.0.1:{broker_port}"),
        agent_http,
        &sim,
    );
    {
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
            "hub up for enrollment: {}",
            hub.log()
        );
        enroll_gateway(&hub_cfg, &hub_addr, &agent_cfg, "gw-1");
        assert!(hub.stop(), "hub stops: {}", hub.log());
    }
    let agent = spawn_node("agent", &agent_cfg, &dir.path().join("agent.log"));
    let backlog = |lane: &str| -> Option<u64> {
        let (_, body) = http("GET", &agent_addr, "/metrics", None, &[])?;
        body.lines()
            .find(|l| {
                l.starts_with("vigil_outbox_backlog_records")
                    && l.contains(&format!("lane=\"{lane}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let held = wait_for(Duration::from_secs(60), || {
        (backlog("critical")? + backlog("normal")? >= total as u64).then_some(())
    });
    assert!(
        held.is_some(),
        "the outbox holds every alert while the hub is down:\n{}",
        tail(&agent.log())
    );
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(backlog("critical").expect("metric"), (total / 10) as u64);

    let hub = spawn_node("hub", &hub_cfg, &dir.path().join("hub.log"));
    let db = dir.path().join("county-1.db");
    let done = wait_for(Duration::from_secs(120), || {
        (hub_store_counts(&db).0 as usize >= total).then_some(())
    });
    assert!(
        done.is_some(),
        "the backlog drained:\n{}",
        tail(&agent.log())
    );
    // The critical lane arrived first: the first tenth of the hub's raises are all critical.
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open");
    let mut stmt = conn
        .prepare("SELECT body FROM events WHERE kind = 'raised' ORDER BY rowid")
        .expect("prepare");
    let severities: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .expect("query")
        .map(|b| {
            let v: serde_json::Value = serde_json::from_str(&b.expect("row")).expect("json");
            v["body"]["severity"].as_str().unwrap_or("").to_owned()
        })
        .collect();
    assert_eq!(severities.len(), total);
    let critical = total / 10;
    assert!(
        severities[..critical].iter().all(|s| s == "critical"),
        "critical lane first"
    );
    assert!(severities[critical..].iter().all(|s| s == "minor"));
    drop(agent);
    drop(hub);
    rt.block_on(sim.stop());
}

#[test]
fn hub_down_the_outbox_holds_and_drains_critical_first_embedded_broker() {
    hub_down(BrokerKind::Embedded);
}

#[test]
fn hub_down_the_outbox_holds_and_drains_critical_first_mosquitto() {
    hub_down(BrokerKind::Mosquitto);
}
