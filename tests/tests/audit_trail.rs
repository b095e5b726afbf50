//! Audit trails travel up the links, end to end: a city hub, a county hub enrolled with it
//! (`vigil-hub enroll`) and a gateway enrolled with the county (`vigil-agent enroll`), each a
//! real process, every link mTLS.
//!
//! - the installer runs `vigil-agent update apply` on the gateway, while its agent runs, with
//!   a bundle signed by a key the gateway does not trust: the refusal the command audits in
//!   the gateway's store reaches the county (`GET /api/v1/audit?node=<gateway>`, read with an
//!   auditor token);
//! - an operator acknowledges the gateway's alarm on the county: the county's record of it
//!   reaches the city, and so does the gateway's record, relayed by the county unchanged;
//! - `vigil-hub audit verify` on the city finds every trail intact; after someone with the
//!   city's file drops the guard trigger and rewrites the actor of the gateway's record, it
//!   exits 1 naming the gateway and the record.
//!
//! The command lines run in their own processes (see `support::cli_entry`). Every wait is
//! bounded.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use semver::Version;
use serde_json::Value;
use support::*;
use vigil_bundle::{BundleInputs, NoProgress};
use vigil_hub::auth::Role;

#[test]
fn node_process() {
    node_entry();
}

#[test]
fn cli_process() {
    cli_entry();
}

const CITY: &str = "city-1";
const COUNTY: &str = "county-7";
const GW: &str = "gw-audit";
/// The local user who runs `vigil-agent update apply` on the gateway (its records' actor).
const INSTALLER: &str = "gw-installer";
/// Every wait for a record to travel.
const TRAVEL: Duration = Duration::from_secs(30);

/// A hub process with its embedded broker (mTLS, gated), its config, its HTTP address and
/// its broker's port.
struct Hub {
    node: Node,
    cfg: PathBuf,
    addr: String,
    broker: u16,
}

/// Writes the config of hub `id` in `dir` (with `[parent] url` when given) and returns it
/// with its HTTP and broker ports.
fn hub_files(dir: &Path, id: &str, level: &str, parent: Option<&str>) -> (PathBuf, u16, u16) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let (http_port, broker) = (free_port(), free_port());
    let cfg = hub_config(
        dir,
        id,
        level,
        http_port,
        &format!("listen = \"127.0.0.1:{broker}\""),
        parent,
    );
    (cfg, http_port, broker)
}

fn start(dir: &Path, cfg: PathBuf, http_port: u16, broker: u16) -> Hub {
    let node = spawn_node("hub", &cfg, &dir.join("hub.log"));
    let addr = format!("127.0.0.1:{http_port}");
    wait_healthy(&addr, &node);
    Hub {
        node,
        cfg,
        addr,
        broker,
    }
}

/// The gateway's `agent.toml` in `dir`: a door controller from the simulator, the county's
/// broker (enrollment makes it `mqtts://`), and `[update]` trusting `keys/release.pub` only.
fn gateway_config(dir: &Path, broker: u16, door: std::net::SocketAddr) -> PathBuf {
    std::fs::create_dir_all(dir.join("keys")).expect("mkdir");
    let release = vigil_bundle::generate_keypair().expect("key");
    vigil_bundle::write_keypair(&release, &dir.join("keys"), "release").expect("write key");
    let text = format!(
        "[node]\nid = \"{GW}\"\nsite = \"ministry/p/c/{COUNTY}/prison-1\"\n\n\
         [uplink]\nurl = \"mqtt://127.0.0.1:{broker}\"\n\n\
         [store]\npath = \"agent.db\"\n\n\
         [profiles]\ndirs = [\"{root}/../device-profiles\"]\n\n\
         [metrics]\nlisten = \"127.0.0.1:{http}\"\n\n\
         [update]\ntrusted_keys = [\"keys/release.pub\"]\n\n\
         [[modbus.device]]\nid = \"doors-block-a\"\nprofile = \"door-access-controller\"\n\
         transport = \"tcp\"\naddress = \"{door}\"\npoll = \"250ms\"\n",
        root = env!("CARGO_MANIFEST_DIR"),
        http = free_port(),
    );
    let cfg = dir.join("agent.toml");
    std::fs::write(&cfg, text).expect("write agent config");
    cfg
}

/// A bundle of version 9.0.0 signed by a key nobody trusts.
fn stranger_bundle(dir: &Path) -> PathBuf {
    let src = dir.join("bundle-src");
    std::fs::create_dir_all(&src).expect("mkdir");
    let agent = src.join("vigil-agent");
    std::fs::write(&agent, "#!/bin/sh\nexit 0\n").expect("agent");
    let mut inputs = BundleInputs::new();
    inputs.agent(&agent).expect("agent input");
    let out = dir.join("agent-9.0.0.vgb");
    vigil_bundle::pack(&inputs, &Version::new(9, 0, 0), &out, &mut NoProgress).expect("pack");
    let stranger = vigil_bundle::generate_keypair().expect("key");
    vigil_bundle::sign(&out, &stranger).expect("sign");
    out
}

fn door_sim(rt: &tokio::runtime::Runtime) -> vigil_sim::SimHandle {
    let text = format!(
        "seed = 7\n[profiles]\ndirs = [\"{}/../device-profiles\"]\n\n[[device]]\nid = \"doors-block-a\"\nprofile = \"door-access-controller\"\nlisten = \"127.0.0.1:0\"\n[device.points.door2_forced]\nkind = \"event\"\nat = \"1s\"\n",
        env!("CARGO_MANIFEST_DIR")
    );
    let facility =
        vigil_sim::Facility::parse(Path::new("sim.toml"), &text).expect("valid sim config");
    rt.block_on(vigil_sim::Simulator::start(facility))
        .expect("simulator")
}

/// The audit records of `node` that hub `addr` holds (first page, newest first), read with
/// the auditor token `token`.
fn audit_of(addr: &str, node: &str, token: &str) -> Option<Vec<Value>> {
    let page = hub_json(
        addr,
        &format!("/api/v1/audit?node={node}&limit=1000"),
        token,
    )?;
    page["records"].as_array().cloned()
}

/// Waits (at most [`TRAVEL`]) for hub `addr` to hold a record of `node` that `pick` accepts.
fn wait_record(
    addr: &str,
    node: &str,
    token: &str,
    pick: impl Fn(&Value) -> bool,
) -> Option<Value> {
    wait_for(TRAVEL, || {
        audit_of(addr, node, token)?.into_iter().find(|r| pick(r))
    })
}

/// The logs of `nodes`, each under its name.
fn logs(nodes: &[(&str, &Node)]) -> String {
    nodes
        .iter()
        .map(|(name, n)| format!("\n── {name} log ──\n{}", n.log()))
        .collect()
}

#[test]
fn audit_records_travel_up_from_gateway_and_county_and_verify_names_a_tampered_one() {
    let began = Instant::now();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let sim = door_sim(&rt);
    let dir = tempfile::tempdir().expect("tempdir");

    // The city; the county enrolled with it (`vigil-hub enroll`), then started.
    let city_dir = dir.path().join("city");
    let (cfg, http_port, broker) = hub_files(&city_dir, CITY, "city", None);
    let city = start(&city_dir, cfg, http_port, broker);
    let county_dir = dir.path().join("county");
    let city_broker = format!("mqtt://127.0.0.1:{}", city.broker);
    let (county_cfg, http_port, broker) =
        hub_files(&county_dir, COUNTY, "county", Some(&city_broker));
    enroll_child_hub(&city.cfg, &city.addr, &county_cfg, COUNTY);
    assert!(
        std::fs::read_to_string(&county_cfg)
            .expect("county config")
            .contains(&format!("url = \"mqtts://127.0.0.1:{}\"", city.broker)),
        "the county's [parent] is the city's mTLS broker"
    );
    hub_user(
        &county_cfg,
        "duty-officer",
        Role::Operator,
        "ministry",
        "the duty officer's password",
    );
    let county = start(&county_dir, county_cfg, http_port, broker);
    let county_auditor = hub_token_as(&county.cfg, "county-auditor", Role::Auditor);
    let city_auditor = hub_token_as(&city.cfg, "city-auditor", Role::Auditor);

    // The gateway, enrolled with the county (`vigil-agent enroll`), its agent running.
    let gw_dir = dir.path().join("gw");
    let agent_cfg = gateway_config(
        &gw_dir,
        county.broker,
        sim.addr("doors-block-a").expect("bound"),
    );
    enroll_gateway(&county.cfg, &county.addr, &agent_cfg, GW);
    let agent = spawn_node("agent", &agent_cfg, &gw_dir.join("agent.log"));
    // The forced door reaches the county: the agent is up and linked.
    let key = format!("{GW}/doors-block-a/door2_forced/state");
    let alarm = wait_for(TRAVEL, || {
        all_alerts(&county.addr, &county_auditor)?
            .into_iter()
            .find(|a| a["key"] == key.as_str())
    })
    .unwrap_or_else(|| {
        panic!(
            "the door alarm reached the county{}",
            logs(&[("gateway", &agent), ("county", &county.node)])
        )
    });

    // 1. The installer applies a bundle signed by an untrusted key: refused, and audited.
    let bundle = stranger_bundle(&gw_dir);
    let bundle_arg = bundle.to_str().expect("utf-8 path");
    let cfg_arg = agent_cfg.to_str().expect("utf-8 path");
    let applied = run_cli(
        "vigil-agent",
        &["update", "apply", bundle_arg, "--config", cfg_arg],
        &[("USER", INSTALLER), ("SUDO_USER", "")],
    );
    assert_eq!(applied.code, Some(1), "{applied:?}");
    assert!(
        applied.stderr.contains("refused") && applied.stderr.contains("not a trusted key"),
        "{applied:?}"
    );
    let target = "bundle agent-9.0.0.vgb";
    let is_refusal = |r: &Value| {
        r["action"] == "update.refuse" && r["target"] == target && r["actor"] == INSTALLER
    };
    let at_county =
        wait_record(&county.addr, GW, &county_auditor, is_refusal).unwrap_or_else(|| {
            panic!(
                "the gateway's refusal reached the county: {:?}{}",
                audit_of(&county.addr, GW, &county_auditor),
                logs(&[("gateway", &agent), ("county", &county.node)])
            )
        });
    assert_eq!(at_county["node"], GW, "{at_county}");
    assert!(
        at_county["details"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not a trusted key")),
        "{at_county}"
    );
    let gw_seq = at_county["seq"].as_u64().expect("seq");
    let gw_hash = at_county["hash"].as_str().expect("hash").to_owned();

    // 2. The duty officer acknowledges the alarm on the county.
    let alert = alarm["id"].as_str().expect("alert id").to_owned();
    let (cookie, csrf) = sign_in(&county.addr, "duty-officer", "the duty officer's password")
        .expect("signed in on the county");
    let (status, body) = http(
        "POST",
        &county.addr,
        &format!("/api/v1/alerts/{alert}/ack"),
        Some(r#"{"comment":"guard sent"}"#),
        &[("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())],
    )
    .expect("ack");
    assert_eq!(status, 200, "{body}");
    let is_ack = |r: &Value| {
        r["actor"] == "duty-officer" && r["action"] == "ack" && r["target"] == alert.as_str()
    };
    let ack_at_county = audit_of(&county.addr, COUNTY, &county_auditor)
        .and_then(|rs| rs.into_iter().find(|r| is_ack(r)))
        .expect("the ack is in the county's own log");
    // The county's record reaches the city as the county wrote it…
    let ack_at_city = wait_record(&city.addr, COUNTY, &city_auditor, is_ack).unwrap_or_else(|| {
        panic!(
            "the county's ack record reached the city: {:?}{}",
            audit_of(&city.addr, COUNTY, &city_auditor),
            logs(&[("county", &county.node), ("city", &city.node)])
        )
    });
    assert_eq!(ack_at_city["seq"], ack_at_county["seq"]);
    assert_eq!(ack_at_city["hash"], ack_at_county["hash"]);
    // …and so does the gateway's, relayed by the county.
    let gw_at_city = wait_record(&city.addr, GW, &city_auditor, is_refusal).unwrap_or_else(|| {
        panic!(
            "the gateway's record was relayed to the city: {:?}{}",
            audit_of(&city.addr, GW, &city_auditor),
            logs(&[("county", &county.node), ("city", &city.node)])
        )
    });
    assert_eq!(gw_at_city["seq"].as_u64(), Some(gw_seq));
    assert_eq!(gw_at_city["hash"].as_str(), Some(gw_hash.as_str()));
    drop(agent);
    drop(county);

    // 3. `vigil-hub audit verify` on the city: its own log and the county's and the
    //    gateway's trails, all intact.
    let city_cfg = city.cfg.to_str().expect("utf-8 path").to_owned();
    let verify = || {
        run_cli(
            "vigil-hub",
            &["audit", "verify", "--config", &city_cfg],
            &[],
        )
    };
    let ok = verify();
    assert_eq!(ok.code, Some(0), "{ok:?}");
    assert!(ok.stdout.starts_with("audit chain ok: "), "{ok:?}");
    for node in [COUNTY, GW] {
        assert!(
            ok.stdout
                .contains(&format!("node {node}: audit chain ok: ")),
            "{node}: {ok:?}"
        );
    }

    // Someone with the city's file rewrites who refused the bundle.
    let conn = rusqlite::Connection::open(city_dir.join(format!("{CITY}.db"))).expect("open raw");
    conn.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    conn.execute_batch("DROP TRIGGER audit_remote_no_update")
        .expect("drop the guard");
    let changed = conn
        .execute(
            "UPDATE audit_remote SET actor = 'someone-else' WHERE origin = ?1 AND seq = ?2",
            rusqlite::params![GW, gw_seq as i64],
        )
        .expect("tamper");
    assert_eq!(changed, 1);
    drop(conn);
    let bad = verify();
    assert_eq!(bad.code, Some(1), "{bad:?}");
    assert!(
        bad.stdout.contains(&format!(
            "node {GW}: audit chain broken at record {gw_seq}: its hash does not match"
        )),
        "{bad:?}"
    );
    assert!(
        bad.stdout
            .contains(&format!("node {COUNTY}: audit chain ok: ")),
        "the county's trail is untouched: {bad:?}"
    );

    drop(city);
    rt.block_on(sim.stop());
    eprintln!("audit trail end to end: {:.1?}", began.elapsed());
}
