//! The four-level command network under partitions and kills, as separate processes on
//! loopback with mutual TLS on every link (issue 11, item 6):
//!
//! ```text
//!   ministry ← province ←[proxy]← city ←[proxy]← county ← fac-1, fac-2 (agents)
//! ```
//!
//! Every node is enrolled the way an installer does it, through the command lines:
//! `vigil-hub enroll-token --node ID --site SITE` at the parent, then `vigil-hub enroll
//! --token -` (a hub) or `vigil-agent enroll --token -` (a gateway) with the token on standard
//! input. Both links of the city hub go through TCP proxies the test controls.
//!
//! The two facilities are agents fed by an MQTT sensor source (a local Mosquitto) with
//! `[[rule]]` limits H 50 / HH 90 on every point of their `bank` device: a reading of 100
//! raises two alerts (`limit_h` minor, `limit_hh` major) and a reading of 0 clears them. The
//! test publishes 1,250 points per facility in four waves, 5,000 distinct alerts in all,
//! each raised and cleared once:
//!
//! 1. all links up — the ministry holds the wave's 1,000 alerts;
//! 2. the city cut with its process alive: its connections held silent, then dropped and
//!    refused — while the facilities raise 1,600 alerts and a ministry supervisor
//!    acknowledges wave-1 alerts through the ministry's API; healed;
//! 3. the city SIGKILLed — 1,400 alerts raised and more acknowledgements while it is down;
//!    restarted;
//! 4. the county SIGKILLed while the facilities' uplinks stream 1,000 more alerts into it;
//!    restarted.
//!
//! Then every level must converge: each hub's API (every page, closed alerts included)
//! holds the 5,000 alerts, one per key, and every replica is the same at every level —
//! the agents' own stores included — in state, acknowledgement, severity, closed and event
//! count: an acknowledged alert is closed by its agent after 4 events (raised, cleared,
//! acknowledged, closed), the others are `rtn_unack` after 2. Nothing lost, nothing
//! duplicated. Alerts the hubs raise themselves (node health, security) are compared
//! wherever more than one level holds them.
//!
//! Every wait has a deadline; the whole test takes about 20 s on 2 cores (a run that does not
//! converge fails after 90 s more, with the problems counted by level and kind).

#[path = "support/command_tree.rs"]
mod command_tree;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use command_tree::*;
use support::*;

#[test]
fn node_process() {
    node_entry();
}

#[test]
fn tree_cli_process() {
    tree_cli_entry();
}

/// Whether enrollment tokens carry `--site` (the child's site binding).
const WITH_SITE: bool = true;

/// Points per facility (two alerts each), and the four waves' shares of them.
const POINTS: usize = 1250;
const WAVES: [usize; 4] = [250, 400, 350, 250];
/// Points per reading message.
const CHUNK: usize = 50;
/// How many wave-1 alerts the ministry acknowledges in each of waves 2, 3 and 4.
const ACKS_PER_WAVE: usize = 150;

const SUPERVISOR: &str = "duty-chief";
const PASSWORD: &str = "the duty chief's password";

/// A hub of the tree: its process, config, HTTP address and API token.
struct Hub {
    id: &'static str,
    node: Node,
    cfg: PathBuf,
    dir: PathBuf,
    addr: String,
    token: String,
}

impl Hub {
    fn restart(&mut self) {
        self.node.kill();
        self.node = spawn_node("hub", &self.cfg, &self.dir.join("hub.log"));
        wait_healthy(&self.addr, &self.node);
    }

    fn log_tail(&self) -> String {
        let log = self.node.log();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        format!(
            "── {} log (last 40 lines) ──\n{}",
            self.id,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }
}

/// Writes the hub's config: its site, HTTP and embedded broker ports, the address its
/// children are told (`advertise`: a proxy in front of the city and the province), and a
/// `[parent]` that `vigil-hub enroll` replaces.
#[allow(clippy::too_many_arguments)]
fn hub_toml(
    dir: &Path,
    id: &str,
    level: &str,
    site: &str,
    http: u16,
    broker: u16,
    advertise: Option<u16>,
    parent: Option<u16>,
) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let advertise = advertise
        .map(|p| format!("advertise = \"mqtts://127.0.0.1:{p}\"\n"))
        .unwrap_or_default();
    let parent = parent
        .map(|p| format!("\n[parent]\nurl = \"mqtt://127.0.0.1:{p}\"\n"))
        .unwrap_or_default();
    let text = format!(
        "[node]\nid = \"{id}\"\nlevel = \"{level}\"\nname = \"{id} test hub\"\nsite = \"{site}\"\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n\n[mqtt]\nlisten = \"127.0.0.1:{broker}\"\n{advertise}{parent}\n[store]\npath = \"{id}.db\"\n"
    );
    let path = dir.join("hub.toml");
    std::fs::write(&path, text).expect("write hub.toml");
    path
}

/// Starts the hub of `cfg` and waits for it; a token for reading its API.
fn start_hub(id: &'static str, dir: &Path, cfg: PathBuf, http: u16) -> Hub {
    let token = hub_token(&cfg);
    let node = spawn_node("hub", &cfg, &dir.join("hub.log"));
    let addr = format!("127.0.0.1:{http}");
    wait_healthy(&addr, &node);
    Hub {
        id,
        node,
        cfg,
        dir: dir.to_owned(),
        addr,
        token,
    }
}

/// A facility's `agent.toml`: uplink to the county (enrollment makes it mTLS), the `bank`
/// device's readings from `fac/bank` on the sensor broker, limits on all its points.
fn agent_toml(dir: &Path, id: &str, site: &str, county_broker: u16, sensors: u16) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let text = format!(
        "[node]\nid = \"{id}\"\nsite = \"{site}\"\n\n[uplink]\nurl = \"mqtt://127.0.0.1:{county_broker}\"\n\n[store]\npath = \"agent.db\"\n\n[profiles]\ndirs = [\"{root}/../device-profiles\"]\n\n[metrics]\nlisten = \"127.0.0.1:{http}\"\n\n[[mqtt.subscription]]\nurl = \"mqtt://127.0.0.1:{sensors}\"\ntopic = \"{id}/bank\"\ndecoder = \"json\"\ndevice = \"bank\"\n\n[[rule]]\npoints = [\"bank/*\"]\nlimits = {{ hh = 90.0, h = 50.0 }}\n",
        root = env!("CARGO_MANIFEST_DIR"),
        http = free_port(),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("write agent.toml");
    path
}

fn metrics_addr(agent_cfg: &Path) -> String {
    let text = std::fs::read_to_string(agent_cfg).expect("agent.toml");
    text.lines()
        .find_map(|l| l.strip_prefix("listen = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("[metrics] listen")
        .to_owned()
}

/// The sum of a metric's samples whose line starts with `name` in `/metrics` at `addr`.
fn metric(addr: &str, name: &str) -> Option<f64> {
    let (status, body) = http("GET", addr, "/metrics", None, &[])?;
    (status == 200).then(|| {
        body.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    })
}

/// What every replica of an alert must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Replica {
    key: String,
    state: String,
    acknowledged: bool,
    severity: String,
    closed: bool,
    event_count: u64,
}

fn replica(a: &serde_json::Value) -> Option<(String, Replica)> {
    Some((
        a["id"].as_str()?.to_owned(),
        Replica {
            key: a["key"].as_str().unwrap_or("").to_owned(),
            state: a["state"].as_str()?.to_owned(),
            acknowledged: a["acknowledged"].as_bool()?,
            severity: a["severity"].as_str()?.to_owned(),
            closed: a["closed"].as_bool()?,
            event_count: a["event_count"].as_u64()?,
        },
    ))
}

/// Every alert a hub's API shows (every page, closed ones too), by id.
fn hub_view(hub: &Hub) -> Option<BTreeMap<String, Replica>> {
    all_alerts(&hub.addr, &hub.token)?
        .iter()
        .map(replica)
        .collect()
}

/// Whether `key` is one of the facilities' alerts.
fn facility_key(key: &str) -> bool {
    key.starts_with("fac-1/") || key.starts_with("fac-2/")
}

/// The problems of one level's view against what the facilities raised (`expected`: the
/// alert ids of each key, `acked`: the ids the ministry acknowledged).
fn check_level(
    level: &str,
    view: &BTreeMap<String, Replica>,
    keys: &BTreeSet<String>,
    acked: &BTreeSet<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut by_key: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for (id, r) in view.iter().filter(|(_, r)| facility_key(&r.key)) {
        by_key.entry(r.key.as_str()).or_default().push(id);
        let want = if acked.contains(id) {
            ("normal", true, 4)
        } else {
            ("rtn_unack", false, 2)
        };
        if (r.state.as_str(), r.closed, r.event_count) != want {
            let acked = if acked.contains(id) {
                "acknowledged at the ministry"
            } else {
                "not acknowledged"
            };
            problems.push(format!(
                "{level}: wrong state, {acked}: {id} {r:?}, expected state {}, closed {}, {} events",
                want.0, want.1, want.2
            ));
        }
    }
    for key in keys {
        match by_key.get(key.as_str()).map(Vec::len) {
            Some(1) => {}
            None => problems.push(format!("{level}: missing: no alert of {key}")),
            Some(n) => problems.push(format!("{level}: duplicated: {n} alerts of {key}")),
        }
    }
    for key in by_key.keys().filter(|k| !keys.contains(**k)) {
        problems.push(format!("{level}: unexpected: an alert of {key}"));
    }
    problems
}

/// The problems between two levels: every alert both hold must be the same, and `upper`
/// holds every facility alert `lower` holds.
fn compare_levels(
    (lower_name, lower): (&str, &BTreeMap<String, Replica>),
    (upper_name, upper): (&str, &BTreeMap<String, Replica>),
) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, r) in lower {
        match upper.get(id) {
            Some(u) if u != r => problems.push(format!(
                "{lower_name} vs {upper_name}: differs: {id} {r:?} but {u:?}"
            )),
            None if facility_key(&r.key) => problems.push(format!(
                "{lower_name} vs {upper_name}: not above: {id} ({})",
                r.key
            )),
            _ => {}
        }
    }
    problems
}

/// Publishes wave `w` (points `first..first+n`) for both facilities: each chunk raised
/// (100), then cleared (0).
fn publish_wave(sensors: u16, first: usize, n: usize) {
    let mut lines = Vec::new();
    let mut p = first;
    while p < first + n {
        let k = CHUNK.min(first + n - p);
        lines.push(readings(p, k, 100.0));
        lines.push(readings(p, k, 0.0));
        p += k;
    }
    let threads: Vec<_> = ["fac-1", "fac-2"]
        .into_iter()
        .map(|fac| {
            let lines = lines.clone();
            std::thread::spawn(move || publish_lines(sensors, &format!("{fac}/bank"), &lines))
        })
        .collect();
    for t in threads {
        t.join().expect("publisher");
    }
}

/// The alert keys of points `first..first+n` of both facilities.
fn wave_keys(first: usize, n: usize) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for fac in ["fac-1", "fac-2"] {
        for p in first..first + n {
            for kind in ["limit_h", "limit_hh"] {
                keys.insert(format!("{fac}/bank/p{p:04}/{kind}"));
            }
        }
    }
    keys
}

/// Acknowledges `ids` at the ministry as the supervisor; each must be answered 200.
fn acknowledge(ministry: &Hub, ids: &[String]) {
    let (cookie, csrf) = sign_in(&ministry.addr, SUPERVISOR, PASSWORD).expect("signed in");
    for id in ids {
        let (status, body) = http(
            "POST",
            &ministry.addr,
            &format!("/api/v1/alerts/{id}/ack"),
            Some(r#"{"comment":"seen at the ministry"}"#),
            &[("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())],
        )
        .expect("ack answered");
        assert_eq!(status, 200, "ack {id} at the ministry: {body}");
    }
}

#[test]
fn a_four_level_network_converges_after_partitions_and_kills() {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let site = |s: &str| WITH_SITE.then(|| s.to_owned());
    let sensors = Mosquitto::start();

    // Ports first: the proxies need their targets, the hubs their proxies.
    let ports: Vec<(u16, u16)> = (0..4).map(|_| (free_port(), free_port())).collect();
    let [(m_http, m_mqtt), (p_http, p_mqtt), (c_http, c_mqtt), (k_http, k_mqtt)] = ports[..] else {
        unreachable!()
    };
    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    // The city's uplink reaches the province through one proxy, the county's uplink reaches
    // the city through the other.
    let city_up = Proxy::start(&rt, loopback(p_mqtt));
    let city_down = Proxy::start(&rt, loopback(c_mqtt));

    // The ministry, then each level enrolled with the one above through the command lines.
    let m_dir = root.join("ministry");
    let m_cfg = hub_toml(
        &m_dir, "ministry", "ministry", "ministry", m_http, m_mqtt, None, None,
    );
    hub_user(
        &m_cfg,
        SUPERVISOR,
        vigil_hub::auth::Role::Supervisor,
        "ministry",
        PASSWORD,
    );
    let ministry = start_hub("ministry", &m_dir, m_cfg, m_http);

    let enroll_hub = |parent: &Hub, id: &str, child_site: &str, cfg: &Path| {
        let token = cli_enroll_token(&parent.cfg, id, site(child_site).as_deref(), "hub");
        cli_enroll_hub(&parent.addr, &token, cfg);
    };
    let p_dir = root.join("province");
    let p_cfg = hub_toml(
        &p_dir,
        "prov-gd",
        "province",
        "ministry/gd",
        p_http,
        p_mqtt,
        Some(city_up.port),
        Some(m_mqtt),
    );
    enroll_hub(&ministry, "prov-gd", "ministry/gd", &p_cfg);
    let province = start_hub("prov-gd", &p_dir, p_cfg, p_http);

    let c_dir = root.join("city");
    let c_cfg = hub_toml(
        &c_dir,
        "city-gz",
        "city",
        "ministry/gd/gz",
        c_http,
        c_mqtt,
        Some(city_down.port),
        Some(city_up.port),
    );
    enroll_hub(&province, "city-gz", "ministry/gd/gz", &c_cfg);
    assert!(
        std::fs::read_to_string(&c_cfg)
            .expect("city config")
            .contains(&format!("mqtts://127.0.0.1:{}", city_up.port)),
        "the city's [parent] is the proxy"
    );
    let mut city = start_hub("city-gz", &c_dir, c_cfg, c_http);

    let k_dir = root.join("county");
    let k_cfg = hub_toml(
        &k_dir,
        "county-by",
        "county",
        "ministry/gd/gz/by",
        k_http,
        k_mqtt,
        None,
        Some(city_down.port),
    );
    enroll_hub(&city, "county-by", "ministry/gd/gz/by", &k_cfg);
    let mut county = start_hub("county-by", &k_dir, k_cfg, k_http);

    let mut agents = Vec::new();
    let mut agent_cfgs = Vec::new();
    for (fac, fac_site) in [
        ("fac-1", "ministry/gd/gz/by/prison-1"),
        ("fac-2", "ministry/gd/gz/by/prison-2"),
    ] {
        let cfg = agent_toml(&root.join(fac), fac, fac_site, k_mqtt, sensors.port);
        let token = cli_enroll_token(&county.cfg, fac, site(fac_site).as_deref(), "gateway");
        cli_enroll_agent(&county.addr, &token, &cfg);
        agents.push(spawn_node("agent", &cfg, &root.join(fac).join("agent.log")));
        agent_cfgs.push(cfg);
    }
    let hubs_log = |hubs: &[&Hub]| -> String {
        hubs.iter()
            .map(|h| h.log_tail())
            .collect::<Vec<_>>()
            .join("\n")
    };

    // The agents' subscriptions are live once a reading of a spare point shows.
    for (i, cfg) in agent_cfgs.iter().enumerate() {
        let fac = ["fac-1", "fac-2"][i];
        let addr = metrics_addr(cfg);
        let live = wait_for(Duration::from_secs(30), || {
            publish_lines(
                sensors.port,
                &format!("{fac}/bank"),
                &[r#"{"warmup":1}"#.into()],
            );
            let (_, body) = http("GET", &addr, "/api/v1/points", None, &[])?;
            body.contains("warmup").then_some(())
        });
        assert!(
            live.is_some(),
            "{fac}'s sensor subscription is live\n{}",
            agents[i].log()
        );
    }
    println!("network up in {:.1} s", started.elapsed().as_secs_f64());

    // ── Wave 1: everything up. ──────────────────────────────────────────────────────────
    let mut first = 0;
    let wave1 = wave_keys(first, WAVES[0]);
    publish_wave(sensors.port, first, WAVES[0]);
    first += WAVES[0];
    let at_ministry = wait_for(Duration::from_secs(60), || {
        let alerts = all_alerts(&ministry.addr, &ministry.token)?;
        let ids: Vec<(String, String)> = alerts
            .iter()
            .filter_map(|a| Some((a["key"].as_str()?.to_owned(), a["id"].as_str()?.to_owned())))
            .filter(|(k, _)| wave1.contains(k))
            .collect();
        (ids.len() >= wave1.len()).then_some(ids)
    })
    .unwrap_or_else(|| {
        panic!(
            "wave 1 reached the ministry\n{}",
            hubs_log(&[&ministry, &province, &city, &county])
        )
    });
    println!(
        "wave 1 ({} alerts) at the ministry at {:.1} s",
        wave1.len(),
        started.elapsed().as_secs_f64()
    );
    // The ministry will acknowledge half of wave 1, in three rounds.
    let mut to_ack: Vec<String> = at_ministry
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, (_, id))| id.clone())
        .take(3 * ACKS_PER_WAVE)
        .collect();
    to_ack.sort();
    let acked: BTreeSet<String> = to_ack.iter().cloned().collect();
    let mut acks = to_ack.chunks(ACKS_PER_WAVE);

    // ── Wave 2: the city cut, its process alive: held silent, then dropped. ────────────
    city_up.set(Cut::Hold);
    city_down.set(Cut::Hold);
    publish_wave(sensors.port, first, WAVES[1] / 2);
    acknowledge(&ministry, acks.next().expect("acks"));
    std::thread::sleep(Duration::from_secs(2));
    city_up.set(Cut::Drop);
    city_down.set(Cut::Drop);
    publish_wave(sensors.port, first + WAVES[1] / 2, WAVES[1] - WAVES[1] / 2);
    first += WAVES[1];
    std::thread::sleep(Duration::from_secs(2));
    city_up.set(Cut::Open);
    city_down.set(Cut::Open);
    println!(
        "wave 2 raised with the city cut; healed at {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // ── Wave 3: the city killed. ───────────────────────────────────────────────────────
    // It comes back while its county is still cut off: the acknowledgements queued at the
    // province for it arrive before the county does.
    city.node.kill();
    publish_wave(sensors.port, first, WAVES[2]);
    first += WAVES[2];
    let round2 = acks.next().expect("acks");
    acknowledge(&ministry, round2);
    std::thread::sleep(Duration::from_secs(1));
    city_down.set(Cut::Drop);
    city.restart();
    let so_far: BTreeSet<&String> = to_ack[..2 * ACKS_PER_WAVE].iter().collect();
    let at_city = wait_for(Duration::from_secs(30), || {
        let view = hub_view(&city)?;
        so_far
            .iter()
            .all(|id| view.get(*id).is_some_and(|r| r.acknowledged))
            .then_some(())
    });
    assert!(
        at_city.is_some(),
        "the acknowledgements reached the restarted city\n{}",
        hubs_log(&[&province, &city])
    );
    city_down.set(Cut::Open);
    println!(
        "wave 3 raised with the city down; restarted, its county back at {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // ── Wave 4: the county SIGKILLed while the facilities stream into it. ──────────────
    let ingested = |hub: &Hub| metric(&hub.addr, "vigil_hub_events_ingested_total");
    let before = ingested(&county).unwrap_or(0.0);
    let last = (first, WAVES[3]);
    let publisher = std::thread::spawn(move || publish_wave(sensors.port, last.0, last.1));
    acknowledge(&ministry, acks.next().expect("acks"));
    let streaming = wait_for(Duration::from_secs(30), || {
        (ingested(&county)? >= before + 200.0).then_some(())
    });
    assert!(
        streaming.is_some(),
        "the county ingests wave 4\n{}",
        county.log_tail()
    );
    county.node.kill();
    publisher.join().expect("wave 4 published");
    std::thread::sleep(Duration::from_secs(1));
    county.restart();
    first += WAVES[3];
    assert_eq!(first, POINTS);
    println!(
        "wave 4 raised across a county kill; restarted at {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // ── Convergence. ───────────────────────────────────────────────────────────────────
    let keys = wave_keys(0, POINTS);
    assert_eq!(keys.len(), 5000);
    let levels = [&county, &city, &province, &ministry];
    let mut last_problems = Vec::new();
    let mut views: Vec<BTreeMap<String, Replica>> = Vec::new();
    let converged = wait_for(Duration::from_secs(90), || {
        views = levels.iter().map(|h| hub_view(h)).collect::<Option<_>>()?;
        let mut problems = Vec::new();
        for (hub, view) in levels.iter().zip(&views) {
            problems.extend(check_level(hub.id, view, &keys, &acked));
        }
        for pair in levels.iter().zip(&views).collect::<Vec<_>>().windows(2) {
            let ((lower, lv), (upper, uv)) = (pair[0], pair[1]);
            problems.extend(compare_levels((lower.id, lv), (upper.id, uv)));
        }
        last_problems = problems;
        last_problems.is_empty().then_some(())
    });
    if converged.is_none() {
        let n = last_problems.len();
        // How many of each kind, by level: `level: what`.
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for p in &last_problems {
            let kind: Vec<&str> = p.splitn(3, ": ").take(2).collect();
            let kind = kind.join(": ");
            *kinds.entry(kind).or_default() += 1;
        }
        if std::env::var_os("VIGIL_KEEP").is_some() {
            println!("kept {}", dir.keep().display());
        }
        last_problems.truncate(30);
        panic!(
            "the levels did not converge within 90 s: {n} problems: {kinds:#?}\nthe first:\n{}\n{}\n{}",
            last_problems.join("\n"),
            agents
                .iter()
                .map(|a| a
                    .log()
                    .lines()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .join("\n"))
                .collect::<Vec<_>>()
                .join("\n"),
            hubs_log(&levels)
        );
    }
    println!("converged at {:.1} s", started.elapsed().as_secs_f64());

    // The agents' own stores are the ground truth: stopped, each alert of theirs must be the
    // ministry's replica, and every one of their alerts is one of the 5,000.
    let ministry_view = &views[3];
    let mut at_agents = 0;
    for (agent, cfg) in agents.iter_mut().zip(&agent_cfgs) {
        assert!(agent.stop(), "the agent stopped cleanly\n{}", agent.log());
        let store = vigil_store::Store::open(cfg.parent().expect("dir").join("agent.db"))
            .expect("the agent's store");
        let now = vigil_core::Timestamp::now();
        for view in store.list_alerts(usize::MAX).expect("alerts") {
            let json = serde_json::to_value(vigil_store::alert_json::AlertJson::new(&view, now))
                .expect("JSON");
            let (id, r) = replica(&json).expect("an alert");
            assert!(facility_key(&r.key) && keys.contains(&r.key), "{r:?}");
            assert_eq!(
                ministry_view.get(&id),
                Some(&r),
                "{id}: the agent's replica is the ministry's"
            );
            at_agents += 1;
        }
    }
    assert_eq!(at_agents, 5000, "the agents hold the 5,000 alerts");
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    drop(agents);
}

/// The step of the scenario above that found a bug, alone and quickly: ministry ← province
/// ← city ← fac-1 (in the code: `city` is the middle hub, the province, and `county` the
/// lower one, the city). A ministry supervisor acknowledges an alert of fac-1 while the
/// middle hub is down; it restarts while the hub below it is still cut off, so the
/// acknowledgement reaches it before its child does. Once the county is back the acknowledgement
/// must reach fac-1, which then closes the alert, and the closure must come back up to the
/// ministry. (Before the hubs routed actions by the child each alert came through, kept in
/// the store, a restarted hub knew no route yet and parked the acknowledgement on an outbox
/// for `fac-1` as if it were its own child, where nobody ever took it.)
#[test]
fn an_acknowledgement_that_reaches_a_restarted_hub_before_its_child_still_reaches_the_gateway() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let sensors = Mosquitto::start();
    let [(m_http, m_mqtt), (c_http, c_mqtt), (k_http, k_mqtt)] =
        [0, 1, 2].map(|_| (free_port(), free_port()));
    let city_down = Proxy::start(&rt, SocketAddr::from(([127, 0, 0, 1], c_mqtt)));

    let m_dir = root.join("ministry");
    let m_cfg = hub_toml(
        &m_dir, "ministry", "ministry", "ministry", m_http, m_mqtt, None, None,
    );
    hub_user(
        &m_cfg,
        SUPERVISOR,
        vigil_hub::auth::Role::Supervisor,
        "ministry",
        PASSWORD,
    );
    let ministry = start_hub("ministry", &m_dir, m_cfg, m_http);
    let c_dir = root.join("city");
    let c_cfg = hub_toml(
        &c_dir,
        "prov-gd",
        "province",
        "ministry/gd",
        c_http,
        c_mqtt,
        Some(city_down.port),
        Some(m_mqtt),
    );
    let token = cli_enroll_token(&ministry.cfg, "prov-gd", Some("ministry/gd"), "hub");
    cli_enroll_hub(&ministry.addr, &token, &c_cfg);
    let mut city = start_hub("prov-gd", &c_dir, c_cfg, c_http);
    let k_dir = root.join("county");
    let k_cfg = hub_toml(
        &k_dir,
        "city-gz",
        "city",
        "ministry/gd/gz",
        k_http,
        k_mqtt,
        None,
        Some(city_down.port),
    );
    let token = cli_enroll_token(&city.cfg, "city-gz", Some("ministry/gd/gz"), "hub");
    cli_enroll_hub(&city.addr, &token, &k_cfg);
    let county = start_hub("city-gz", &k_dir, k_cfg, k_http);
    let fac_site = "ministry/gd/gz/by/prison-1";
    let agent_cfg = agent_toml(&root.join("fac-1"), "fac-1", fac_site, k_mqtt, sensors.port);
    let token = cli_enroll_token(&county.cfg, "fac-1", Some(fac_site), "gateway");
    cli_enroll_agent(&county.addr, &token, &agent_cfg);
    let agent = spawn_node("agent", &agent_cfg, &root.join("fac-1").join("agent.log"));
    let logs = |hubs: &[&Hub]| -> String {
        hubs.iter()
            .map(|h| h.log_tail())
            .collect::<Vec<_>>()
            .join("\n")
    };

    // One point above its H limit and back: fac-1/bank/p0000/limit_h, cleared, unacknowledged.
    let key = "fac-1/bank/p0000/limit_h";
    let alert = wait_for(Duration::from_secs(40), || {
        publish_lines(
            sensors.port,
            "fac-1/bank",
            &[readings(0, 1, 100.0), readings(0, 1, 0.0)],
        );
        let alerts = all_alerts(&ministry.addr, &ministry.token)?;
        alerts
            .iter()
            .find(|a| a["key"] == key && a["state"] == "rtn_unack")
            .and_then(|a| Some(a["id"].as_str()?.to_owned()))
    })
    .unwrap_or_else(|| {
        panic!(
            "the alert reached the ministry\n{}\n{}",
            agent.log(),
            logs(&[&ministry, &city, &county])
        )
    });

    // The middle hub goes down; the ministry acknowledges; it comes back with its child
    // still cut off, and takes the acknowledgement from the ministry.
    city.node.kill();
    city_down.set(Cut::Drop);
    acknowledge(&ministry, std::slice::from_ref(&alert));
    city.restart();
    let at_city = wait_for(Duration::from_secs(30), || {
        hub_view(&city)?
            .get(&alert)
            .is_some_and(|r| r.acknowledged)
            .then_some(())
    });
    assert!(
        at_city.is_some(),
        "the acknowledgement reached the restarted city\n{}",
        logs(&[&ministry, &city])
    );
    city_down.set(Cut::Open);

    // fac-1 closes the acknowledged, cleared alert; the closure comes back to the ministry.
    let closed = wait_for(Duration::from_secs(40), || {
        hub_view(&ministry)?
            .get(&alert)
            .is_some_and(|r| r.closed)
            .then_some(())
    });
    if closed.is_none() {
        let outboxes: Vec<String> = http("GET", &city.addr, "/metrics", None, &[])
            .map(|(_, body)| {
                body.lines()
                    .filter(|l| l.starts_with("vigil_hub_outbox_backlog_records"))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        panic!(
            "the acknowledgement did not reach fac-1 (the alert is not closed at the ministry); the city's outboxes:\n{}\n{}\n{}",
            outboxes.join("\n"),
            agent.log().lines().rev().take(20).collect::<Vec<_>>().join("\n"),
            logs(&[&ministry, &city, &county])
        );
    }
}
