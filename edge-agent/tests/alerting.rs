//! The alert pipeline end to end: `vigil-agent run` in-process against a real Modbus TCP
//! server on loopback, with shipped device profiles and `[[rule]]` overrides. Alerts are
//! read where an installer and the uplink see them: `GET /api/v1/alerts` and the store's
//! outbox.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use support::modbus_server::{start_tcp, Image, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vigil_core::{AlertEvent, AlertEventBody, Lane, Timestamp, Value};
use vigil_profile::Profile;
use vigil_store::Store;

/// How long any one expected change may take.
const PATIENCE: Duration = Duration::from_secs(15);

fn profiles_dir() -> String {
    format!("{}/../device-profiles", env!("CARGO_MANIFEST_DIR"))
}

fn profile(name: &str) -> Profile {
    vigil_profile::load_file(Path::new(&format!("{}/{name}.yaml", profiles_dir())))
        .expect("a shipped profile")
}

/// A facility: one Modbus server with a fence controller (unit 1) and a door controller
/// (unit 2), values that raise nothing, and an agent config for it.
struct Facility {
    state: Arc<State>,
    fence: Profile,
    doors: Profile,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Facility {
    async fn new() -> Self {
        let fence = profile("perimeter-fence-controller");
        let doors = profile("door-access-controller");
        let mut fence_image = Image::default();
        fence_image.set(&fence, "supply_voltage", &Value::Float(24.0));
        let mut door_image = Image::default();
        door_image.set(&doors, "door1_locked", &Value::Bool(true));
        let state = Arc::new(State::default());
        {
            let mut units = state.units.lock().expect("lock");
            units.insert(1, fence_image);
            units.insert(2, door_image);
        }
        let addr = start_tcp(state.clone()).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!(
            r#"[node]
id = "gw-test"
site = "ministry/guangdong/guangzhou/baiyun/prison-3"

[uplink]
url = "mqtt://127.0.0.1:1883"

[store]
path = "{store}"

[profiles]
dirs = ["{profiles}"]

[metrics]
listen = "127.0.0.1:0"

[[modbus.device]]
id = "fence-north"
profile = "perimeter-fence-controller"
transport = "tcp"
address = "{addr}"
unit = 1
poll = "200ms"
timeout = "300ms"
zone = "north-perimeter"

[[modbus.device]]
id = "doors"
profile = "door-access-controller"
transport = "tcp"
address = "{addr}"
unit = 2
poll = "200ms"
timeout = "300ms"
retries = 0

# The profile's 5 s on-delay, shortened for the test.
[[rule]]
points = ["fence-north/supply_voltage"]
limits = {{ hh = 30, h = 28, l = 22, ll = 20, deadband = 0.5, delay = "1s" }}

# Of the door controller, only door 1 forced.
[[rule]]
points = ["doors/*"]
enabled = false

[[rule]]
points = ["doors/door1_forced"]
enabled = true
"#,
            // A directory that does not exist yet: the agent creates it.
            store = dir.path().join("state").join("agent.db").display(),
            profiles = profiles_dir(),
        );
        let config = dir.path().join("agent.toml");
        std::fs::write(&config, text).expect("write config");
        Facility {
            state,
            fence,
            doors,
            dir,
            config,
        }
    }

    fn set(&self, unit: u8, point: &str, value: Value) {
        let profile = if unit == 1 { &self.fence } else { &self.doors };
        self.state
            .units
            .lock()
            .expect("lock")
            .get_mut(&unit)
            .expect("unit")
            .set(profile, point, &value);
    }

    fn store_path(&self) -> PathBuf {
        self.dir.path().join("state").join("agent.db")
    }

    /// Every event in the outbox lane, decoded from its link-event payload.
    fn outbox(&self, lane: Lane) -> Vec<AlertEvent> {
        let store = Store::open(self.store_path()).expect("open the agent's store");
        store
            .outbox_read("parent", lane, 0, 10_000, usize::MAX)
            .expect("read")
            .into_iter()
            .map(|r| {
                let v: serde_json::Value = serde_json::from_slice(&r.payload).expect("json");
                serde_json::from_value(v["alert"].clone()).expect("an alert event")
            })
            .collect()
    }

    /// Starts `vigil-agent run` on this facility's config.
    async fn start(&self) -> Agent {
        let (config, profiles) =
            vigil_agent::check_cmd::load_checked(&self.config).expect("a valid config");
        let shutdown = CancellationToken::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(vigil_agent::run::run(
            config,
            profiles,
            shutdown.clone(),
            Some(tx),
        ));
        let http = tokio::time::timeout(PATIENCE, rx)
            .await
            .expect("the agent listens in time")
            .expect("the agent reports its address");
        Agent {
            http,
            shutdown,
            task,
        }
    }
}

struct Agent {
    http: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Agent {
    async fn get(&self, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(self.http)
            .await
            .expect("connect");
        s.write_all(
            format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.http
            )
            .as_bytes(),
        )
        .await
        .expect("send");
        let mut body = String::new();
        s.read_to_string(&mut body).await.expect("read");
        body.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    }

    async fn alerts(&self) -> Vec<serde_json::Value> {
        let body = self.get("/api/v1/alerts").await;
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        json["alerts"].as_array().expect("alerts").clone()
    }

    /// Waits until an alert with `key` satisfies `pred`, and answers it.
    async fn wait_for(
        &self,
        key: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let alerts = self.alerts().await;
            if let Some(a) = alerts.iter().find(|a| a["key"] == key && pred(a)) {
                return a.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no alert {key} as expected; alerts: {alerts:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("the agent stops in time")
            .expect("the agent task")
            .expect("the agent ran without error");
    }
}

const HH: &str = "gw-test/fence-north/supply_voltage/limit_hh";
const H: &str = "gw-test/fence-north/supply_voltage/limit_h";

fn names(events: &[AlertEvent], alert: &str) -> Vec<&'static str> {
    events
        .iter()
        .filter(|e| e.alert.to_string() == alert)
        .map(|e| e.body.name())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_beyond_hh_raises_after_the_delay_and_clears_when_back() {
    let facility = Facility::new().await;
    let agent = facility.start().await;
    // The device is read (its point appears) before the limit is crossed.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !agent
        .get("/api/v1/points")
        .await
        .contains("fence-north/supply_voltage")
    {
        assert!(tokio::time::Instant::now() < deadline, "no readings");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let crossed = Timestamp::now();
    facility.set(1, "supply_voltage", Value::Float(31.2));

    let hh = agent.wait_for(HH, |a| a["active"] == true).await;
    assert_eq!(hh["severity"], "major");
    assert_eq!(hh["state"], "active_unack");
    assert_eq!(hh["kind"], "limit_hh");
    assert_eq!(hh["source"]["device"], "fence-north");
    assert_eq!(hh["source"]["point"], "supply_voltage");
    assert_eq!(hh["site"], "ministry/guangdong/guangzhou/baiyun/prison-3");
    assert_eq!(hh["zone"], "north-perimeter");
    assert_eq!(hh["message"], "supply_voltage 31.2 V above HH 30 V");
    let raised_at: Timestamp = hh["raised_at"]
        .as_str()
        .expect("raised_at")
        .parse()
        .expect("a timestamp");
    assert!(
        raised_at.as_millis() - crossed.as_millis() >= 1000,
        "raised {raised_at} before the 1 s on-delay after {crossed}"
    );
    let h = agent.wait_for(H, |a| a["active"] == true).await;
    assert_eq!(h["severity"], "minor");

    // In the outbox: the major HH in the critical lane, the minor H in the normal lane.
    let hh_id = hh["id"].as_str().expect("id").to_owned();
    let h_id = h["id"].as_str().expect("id").to_owned();
    assert_eq!(names(&facility.outbox(Lane::Critical), &hh_id), ["raised"]);
    assert_eq!(names(&facility.outbox(Lane::Normal), &h_id), ["raised"]);

    facility.set(1, "supply_voltage", Value::Float(24.0));
    let cleared = agent.wait_for(HH, |a| a["active"] == false).await;
    assert_eq!(cleared["id"], hh["id"], "the same alert clears");
    assert_eq!(cleared["state"], "rtn_unack");
    assert_eq!(
        names(&facility.outbox(Lane::Critical), &hh_id),
        ["raised", "cleared"]
    );
    agent.wait_for(H, |a| a["active"] == false).await;

    let metrics = agent.get("/metrics").await;
    for want in [
        r#"vigil_alert_events_total{event="raised",lane="critical"}"#,
        r#"vigil_conditions_total{kind="limit_hh",state="raised"} 1"#,
        r#"vigil_outbox_backlog_records{lane="critical",link="parent"}"#,
        "vigil_alerts_open 2",
    ] {
        assert!(metrics.contains(want), "{want} missing in\n{metrics}");
    }
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_door_is_critical_latching_and_in_the_critical_lane() {
    let facility = Facility::new().await;
    let agent = facility.start().await;
    facility.set(2, "door1_forced", Value::Bool(true));
    let key = "gw-test/doors/door1_forced/state";
    let door = agent.wait_for(key, |a| a["active"] == true).await;
    assert_eq!(door["severity"], "critical");
    assert_eq!(door["latching"], true);
    assert_eq!(door["message"], "Door 1 forced open");
    assert_eq!(door["zone"], "block-a");
    let id = door["id"].as_str().expect("id").to_owned();
    let critical = facility.outbox(Lane::Critical);
    let raised = critical
        .iter()
        .find(|e| e.alert.to_string() == id)
        .expect("the raise is in the critical lane");
    assert!(matches!(
        &raised.body,
        AlertEventBody::Raised { latching: true, .. }
    ));
    facility.set(2, "door1_forced", Value::Bool(false));
    let back = agent.wait_for(key, |a| a["active"] == false).await;
    assert_eq!(
        back["state"], "rtn_unack",
        "unacknowledged: stays annunciated"
    );
    // The other door points were disabled by [[rule]]: door 2..4 read unlocked, no alert.
    let alerts = agent.alerts().await;
    assert!(
        alerts
            .iter()
            .all(|a| !a["key"].as_str().unwrap_or("").contains("locked")),
        "{alerts:#?}"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_device_raises_communication_loss() {
    let facility = Facility::new().await;
    let agent = facility.start().await;
    let key = "gw-test/doors/comm_loss";
    // First contact: nothing raised.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !agent
        .get("/api/v1/points")
        .await
        .contains("doors/door1_forced")
    {
        assert!(tokio::time::Instant::now() < deadline, "no readings");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    facility.state.silent.lock().expect("lock").insert(2);
    let lost = agent.wait_for(key, |a| a["active"] == true).await;
    assert_eq!(lost["severity"], "major");
    assert_eq!(lost["source"]["device"], "doors");
    assert_eq!(lost["source"].get("point"), None, "a whole device");
    let id = lost["id"].as_str().expect("id").to_owned();
    assert_eq!(names(&facility.outbox(Lane::Critical), &id), ["raised"]);
    facility.state.silent.lock().expect("lock").remove(&2);
    let back = agent.wait_for(key, |a| a["active"] == false).await;
    assert_eq!(back["id"], lost["id"]);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_one_alert_for_a_still_active_condition() {
    let facility = Facility::new().await;
    facility.set(1, "supply_voltage", Value::Float(35.0));
    let agent = facility.start().await;
    let first = agent.wait_for(HH, |a| a["active"] == true).await;
    let id = first["id"].as_str().expect("id").to_owned();
    agent.stop().await;

    let agent = facility.start().await;
    // Long enough for the detector to re-raise after its 1 s on-delay.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let alerts = agent.alerts().await;
    let hh: Vec<&serde_json::Value> = alerts.iter().filter(|a| a["key"] == HH).collect();
    assert_eq!(hh.len(), 1, "one alert for the key: {hh:#?}");
    assert_eq!(hh[0]["id"], first["id"]);
    assert_eq!(hh[0]["active"], true);
    assert_eq!(
        names(&facility.outbox(Lane::Critical), &id),
        ["raised"],
        "no second raise"
    );

    // It still clears after the restart, on the same alert.
    facility.set(1, "supply_voltage", Value::Float(24.0));
    let cleared = agent.wait_for(HH, |a| a["active"] == false).await;
    assert_eq!(cleared["id"], first["id"]);
    let events = facility.outbox(Lane::Critical);
    assert_eq!(names(&events, &id), ["raised", "cleared"]);
    let stamps: Vec<_> = events
        .iter()
        .filter(|e| e.alert.to_string() == id)
        .map(|e| e.hlc)
        .collect();
    assert!(stamps[1] > stamps[0], "the clock resumed after the store");
    agent.stop().await;
}
