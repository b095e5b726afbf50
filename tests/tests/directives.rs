//! Directives down the tree (docs/ARCHITECTURE.md#directives), as separate processes on
//! loopback over mTLS: a city hub, a county hub enrolled with it, a gateway enrolled with the
//! county and running, and a second gateway enrolled but down.
//!
//! A supervisor at the city posts a `posture` directive to the county's subtree; the county
//! passes it to both gateways' downlinks; the running gateway raises its posture and
//! acknowledges; the acknowledgements travel up hop by hop; `GET /api/v1/directives/{id}` at
//! the city shows each node's acknowledgement and, after the deadline, the gateway that is
//! down as missing. A viewer cannot post; a supervisor whose scope does not hold the target is
//! refused (403); both ends audit it.

mod support;

use std::path::Path;
use std::time::Duration;

use support::*;
use vigil_hub::auth::Role;

#[test]
fn node_process() {
    node_entry();
}

/// A gateway at `site` with a `[[posture]]` entry, uplink on plain mqtt:// (enrollment
/// changes it), no devices.
fn gateway(root: &Path, node: &str, site: &str, broker: u16) -> std::path::PathBuf {
    let dir = root.join(node);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let text = format!(
        "[node]\nid = \"{node}\"\nsite = \"{site}\"\n\n[uplink]\nurl = \"mqtt://127.0.0.1:{broker}\"\n\n[store]\npath = \"agent.db\"\n\n[metrics]\nlisten = \"127.0.0.1:{http}\"\n\n[[posture]]\npoints = [\"env-1/*\"]\nlimits = {{ h = 26.0, delay = \"1s\" }}\n",
        http = free_port(),
    );
    let cfg = dir.join("agent.toml");
    std::fs::write(&cfg, text).expect("write agent config");
    cfg
}

fn post(addr: &str, token: &str, body: &str) -> (u16, String) {
    let bearer = format!("Bearer {token}");
    http(
        "POST",
        addr,
        "/api/v1/directives",
        Some(body),
        &[("Authorization", bearer.as_str())],
    )
    .expect("an answer")
}

fn ack_of<'a>(view: &'a serde_json::Value, node: &str) -> Option<&'a serde_json::Value> {
    view["acks"].as_array()?.iter().find(|a| a["node"] == node)
}

fn listed(view: &serde_json::Value, field: &str, node: &str) -> bool {
    view[field]
        .as_array()
        .is_some_and(|v| v.iter().any(|n| n == node))
}

#[test]
fn a_posture_directive_reaches_the_gateway_and_its_acknowledgement_the_city() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The city hub.
    let city_dir = dir.path().join("city");
    std::fs::create_dir_all(&city_dir).expect("mkdir");
    let (city_http, city_broker) = (free_port(), free_port());
    let city_cfg = hub_config(
        &city_dir,
        "city-1",
        "city",
        city_http,
        &format!("listen = \"127.0.0.1:{city_broker}\""),
        None,
    );
    let city_addr = format!("127.0.0.1:{city_http}");
    let city = spawn_node("hub", &city_cfg, &city_dir.join("hub.log"));
    wait_healthy(&city_addr, &city);
    // The county hub, enrolled with the city.
    let county_dir = dir.path().join("county");
    std::fs::create_dir_all(&county_dir).expect("mkdir");
    let (county_http, county_broker) = (free_port(), free_port());
    let county_cfg = hub_config(
        &county_dir,
        "county-1",
        "county",
        county_http,
        &format!("listen = \"127.0.0.1:{county_broker}\""),
        Some(&format!("mqtt://127.0.0.1:{city_broker}")),
    );
    enroll_child_hub(&city_cfg, &city_addr, &county_cfg, "county-1");
    let county_addr = format!("127.0.0.1:{county_http}");
    let county = spawn_node("hub", &county_cfg, &county_dir.join("hub.log"));
    wait_healthy(&county_addr, &county);
    // Two gateways enrolled with the county; only gw-1 runs.
    let gw1_cfg = gateway(
        dir.path(),
        "gw-1",
        "ministry/p/c/county-1/prison-1",
        county_broker,
    );
    enroll_gateway(&county_cfg, &county_addr, &gw1_cfg, "gw-1");
    let gw2_cfg = gateway(
        dir.path(),
        "gw-2",
        "ministry/p/c/county-1/prison-2",
        county_broker,
    );
    enroll_gateway(&county_cfg, &county_addr, &gw2_cfg, "gw-2");
    let gw1 = spawn_node("agent", &gw1_cfg, &dir.path().join("gw-1.log"));

    let supervisor = hub_token_as(&city_cfg, "sup", Role::Supervisor);
    let viewer = hub_token_as(&city_cfg, "watch", Role::Viewer);
    let elsewhere = hub_token_scoped(
        &city_cfg,
        "sup-9",
        Role::Supervisor,
        "ministry/p/c/county-9",
    );
    let body = format!(
        r#"{{"target": "ministry/p/c/county-1", "deadline": "5s",
            "body": {{"type": "posture", "until": "{}"}}}}"#,
        an_hour_from_now()
    );
    let body = body.as_str();

    // A viewer cannot post; a supervisor of another county cannot target this one.
    let (status, text) = post(&city_addr, &viewer, body);
    assert_eq!(status, 403, "{text}");
    let (status, text) = post(&city_addr, &elsewhere, body);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("scope"), "{text}");

    let (status, text) = post(&city_addr, &supervisor, body);
    assert_eq!(status, 201, "{text}");
    let issued: serde_json::Value = serde_json::from_str(&text).expect("json");
    let id = issued["id"].as_str().expect("id").to_owned();
    assert_eq!(issued["kind"], "posture");
    let path = format!("/api/v1/directives/{id}");

    // gw-1's acknowledgement arrives at the city through the county.
    let acked = wait_for(Duration::from_secs(60), || {
        let view = hub_json(&city_addr, &path, &supervisor)?;
        ack_of(&view, "gw-1").is_some().then_some(view)
    });
    let view = acked.unwrap_or_else(|| {
        panic!(
            "gw-1's acknowledgement at the city\ngw-1 log:\n{}\ncounty log:\n{}\ncity log:\n{}",
            gw1.log(),
            county.log(),
            city.log()
        )
    });
    let gw1_ack = ack_of(&view, "gw-1").expect("gw-1");
    assert_eq!(gw1_ack["outcome"], "applied", "{view}");
    assert_eq!(gw1_ack["via"], "county-1", "{view}");
    let county_ack = ack_of(&view, "county-1").expect("the county's own");
    assert_eq!(county_ack["outcome"], "not_applicable", "{view}");
    assert!(listed(county_ack, "relayed_to", "gw-2"), "{view}");

    // gw-2 is down: pending until the deadline, then missing.
    let overdue = wait_for(Duration::from_secs(30), || {
        let view = hub_json(&city_addr, &path, &supervisor)?;
        (view["overdue"] == true).then_some(view)
    })
    .expect("past the deadline");
    assert!(listed(&overdue, "missing", "gw-2"), "{overdue}");
    assert!(!listed(&overdue, "missing", "gw-1"), "{overdue}");

    // The county shows the same for its own subtree; the other county's supervisor sees
    // nothing of it.
    let county_token = hub_token_as(&county_cfg, "sup", Role::Supervisor);
    let at_county = hub_json(&county_addr, &path, &county_token).expect("at the county");
    assert_eq!(at_county["issued_here"], false);
    assert_eq!(at_county["received_from"], "city-1");
    let list = hub_json(&city_addr, "/api/v1/directives", &elsewhere).expect("list");
    assert_eq!(
        list["directives"].as_array().map(Vec::len),
        Some(0),
        "{list}"
    );

    // Counted: issued (and sent) at the city, received at the county.
    let metrics = |addr: &str, token: &str| {
        let bearer = format!("Bearer {token}");
        http(
            "GET",
            addr,
            "/metrics",
            None,
            &[("Authorization", bearer.as_str())],
        )
        .map(|(_, body)| body)
        .unwrap_or_default()
    };
    let city_metrics = metrics(&city_addr, &supervisor);
    assert!(
        city_metrics.contains("vigil_hub_directives_total{event=\"issued\"} 1"),
        "{city_metrics}"
    );
    let county_metrics = metrics(&county_addr, &county_token);
    assert!(
        county_metrics.contains("vigil_hub_directives_total{event=\"received\"} 1"),
        "{county_metrics}"
    );

    // Audited at both ends: issued at the city, applied at the gateway.
    let audit = hub_json(&city_addr, "/api/v1/audit", &hub_token(&city_cfg)).expect("audit");
    assert!(audit.to_string().contains("directive.issue"), "{audit}");
    let gw1_store =
        vigil_store::Store::open(gw1_cfg.parent().expect("dir").join("agent.db")).expect("store");
    let records = gw1_store.audit_records(0, 1000).expect("audit records");
    assert!(
        records
            .iter()
            .any(|r| r.entry.action == "directive.apply" && r.entry.target == id),
        "{records:?}"
    );

    // gw-2 comes back: the directive waited in its downlink, and its acknowledgement arrives
    // late, shown with the others.
    let gw2 = spawn_node("agent", &gw2_cfg, &dir.path().join("gw-2.log"));
    let late = wait_for(Duration::from_secs(60), || {
        let view = hub_json(&city_addr, &path, &supervisor)?;
        ack_of(&view, "gw-2").is_some().then_some(view)
    });
    let late = late.unwrap_or_else(|| {
        panic!(
            "gw-2's late acknowledgement
{}",
            gw2.log()
        )
    });
    assert_eq!(ack_of(&late, "gw-2").expect("gw-2")["outcome"], "applied");
    assert_eq!(late["missing"].as_array().map(Vec::len), Some(0), "{late}");
    drop(gw2);
    drop(gw1);
    drop(county);
    drop(city);
}

/// One message on the sensor broker (`mosquitto_pub`).
fn publish(port: u16, topic: &str, message: &str) {
    let status = std::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", topic, "-m", message])
        .status()
        .expect("mosquitto_pub is needed for this test: run `make deps` (mosquitto-clients)");
    assert!(status.success(), "mosquitto_pub {topic} {message}");
}

/// The latest value of `point` at the agent whose `[metrics] listen` is `addr`.
fn point_value(addr: &str, point: &str) -> Option<f64> {
    let points = get_json(addr, "/api/v1/points")?;
    points["points"]
        .as_array()?
        .iter()
        .find(|p| p["point"] == point)?["value"]
        .as_f64()
}

/// Publishes `{"temp": temp, "seq": n}` and then `{"seq": n + 1}`, and waits until the agent
/// shows seq n + 1: the agent takes readings in order, so the temperature has then been
/// through its detectors.
fn reading_through(sensors: u16, agent: &str, temp: f64, n: u32) {
    publish(
        sensors,
        "gw-p/env",
        &format!(r#"{{"temp": {temp}, "seq": {n}}}"#),
    );
    publish(sensors, "gw-p/env", &format!(r#"{{"seq": {}}}"#, n + 1));
    let seen = wait_for(Duration::from_secs(30), || {
        (point_value(agent, "env/seq")? == f64::from(n + 1)).then_some(())
    });
    assert!(seen.is_some(), "the agent took reading {n}");
}

/// A reading between the normal limit (H 30) and the posture limit (H 26) alarms only once
/// a posture directive is in force: 27 raises nothing before; after the supervisor's
/// directive (acknowledged `applied`), it raises `posture_h`, which reaches the hub.
#[test]
fn a_reading_between_the_normal_and_the_posture_limit_alarms_only_under_the_posture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sensors = Mosquitto::start();
    let (http_port, broker) = (free_port(), free_port());
    let hub_cfg = hub_config(
        dir.path(),
        "county-1",
        "county",
        http_port,
        &format!("listen = \"127.0.0.1:{broker}\""),
        None,
    );
    let hub_addr = format!("127.0.0.1:{http_port}");
    let hub = spawn_node("hub", &hub_cfg, &dir.path().join("hub.log"));
    wait_healthy(&hub_addr, &hub);
    let gw_dir = dir.path().join("gw-p");
    std::fs::create_dir_all(&gw_dir).expect("mkdir");
    let agent_addr = format!("127.0.0.1:{}", free_port());
    let gw_cfg = gw_dir.join("agent.toml");
    std::fs::write(
        &gw_cfg,
        format!(
            "[node]\nid = \"gw-p\"\nsite = \"ministry/p/c/county-1/prison-1\"\n\n[uplink]\nurl = \"mqtt://127.0.0.1:{broker}\"\n\n[store]\npath = \"agent.db\"\n\n[metrics]\nlisten = \"{agent_addr}\"\n\n[[mqtt.subscription]]\nurl = \"mqtt://127.0.0.1:{port}\"\ntopic = \"gw-p/env\"\ndecoder = \"json\"\ndevice = \"env\"\n\n[[rule]]\npoints = [\"env/temp\"]\nlimits = {{ h = 30.0 }}\n\n[[posture]]\npoints = [\"env/temp\"]\nlimits = {{ h = 26.0 }}\n",
            port = sensors.port,
        ),
    )
    .expect("agent.toml");
    enroll_gateway(&hub_cfg, &hub_addr, &gw_cfg, "gw-p");
    let gw = spawn_node("agent", &gw_cfg, &gw_dir.join("agent.log"));
    let live = wait_for(Duration::from_secs(30), || {
        publish(sensors.port, "gw-p/env", r#"{"seq": 0}"#);
        point_value(&agent_addr, "env/seq")
    });
    assert!(
        live.is_some(),
        "the sensor subscription is live\n{}",
        gw.log()
    );

    // Normal posture: 27 is below H 30 and the posture limits are not armed.
    reading_through(sensors.port, &agent_addr, 27.0, 1);
    let alerts = get_json(&agent_addr, "/api/v1/alerts").expect("agent alerts");
    assert!(
        !alerts.to_string().contains("env/temp"),
        "no alarm before the posture: {alerts}"
    );

    // The supervisor raises the posture; the gateway applies it.
    let supervisor = hub_token_as(&hub_cfg, "sup", Role::Supervisor);
    let body = format!(
        r#"{{"target": "ministry/p/c/county-1/prison-1", "deadline": "1m",
            "body": {{"type": "posture", "until": "{}"}}}}"#,
        an_hour_from_now()
    );
    let body = body.as_str();
    let (status, text) = post(&hub_addr, &supervisor, body);
    assert_eq!(status, 201, "{text}");
    let id = serde_json::from_str::<serde_json::Value>(&text).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let applied = wait_for(Duration::from_secs(30), || {
        let view = hub_json(&hub_addr, &format!("/api/v1/directives/{id}"), &supervisor)?;
        (ack_of(&view, "gw-p")?["outcome"] == "applied").then_some(())
    });
    assert!(applied.is_some(), "gw-p applied the posture\n{}", gw.log());

    // Now 27 alarms, as posture_h, and the alarm reaches the hub; H 30 still has not.
    reading_through(sensors.port, &agent_addr, 27.5, 3);
    let api = hub_token(&hub_cfg);
    let raised = wait_for(Duration::from_secs(30), || {
        all_alerts(&hub_addr, &api)?
            .into_iter()
            .find(|a| a["key"] == "gw-p/env/temp/posture_h")
    });
    let raised = raised.unwrap_or_else(|| panic!("posture_h at the hub\n{}", gw.log()));
    assert_eq!(raised["severity"], "minor", "{raised}");
    let alerts = all_alerts(&hub_addr, &api).expect("alerts");
    assert!(
        !alerts.iter().any(|a| a["key"] == "gw-p/env/temp/limit_h"),
        "{alerts:?}"
    );
    drop(gw);
    drop(hub);
}

/// An hour from now, as the API takes a time (a posture may end at most 7 days ahead).
fn an_hour_from_now() -> String {
    let now = vigil_core::Timestamp::now();
    vigil_core::Timestamp::from_millis(now.as_millis() + 3_600_000).to_string()
}
