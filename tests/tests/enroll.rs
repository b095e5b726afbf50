//! Enrollment against a real hub process (its `POST /api/v1/enroll`, its store's one-time
//! tokens, its CA) and what the certificate then means on the hub's gated broker:
//!
//! - `vigil-agent enroll` writes the key (0600), the certificates and the `mqtts://` URL; a
//!   token works once; a token for another node or a pin of another CA is refused with
//!   nothing written;
//! - an agent enrolled as node A whose config claims node B cannot publish as B: the gate
//!   refuses it, nothing of B reaches the hub, and the same agent as A gets through;
//! - a county hub enrolled with its city (`vigil-hub enroll`) and a gateway enrolled with
//!   the county carry a critical alarm up both mTLS links.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;
use vigil_store::NodeKind;

/// The site the gateways of these tests are at (their `[node] site`), bound with their tokens.
const GW_SITE: &str = "ministry/p/c/county-1/prison-1";

#[test]
fn node_process() {
    node_entry();
}

/// A county hub with its embedded broker behind the mTLS gate, up.
struct Hub {
    node: Node,
    cfg: PathBuf,
    addr: String,
    broker: u16,
}

fn start_hub(dir: &Path) -> Hub {
    std::fs::create_dir_all(dir).expect("mkdir");
    let (http_port, broker) = (free_port(), free_port());
    let cfg = hub_config(
        dir,
        "county-1",
        "county",
        http_port,
        &format!("listen = \"127.0.0.1:{broker}\""),
        None,
    );
    let node = spawn_node("hub", &cfg, &dir.join("hub.log"));
    let addr = format!("127.0.0.1:{http_port}");
    assert!(
        wait_for(Duration::from_secs(20), || http(
            "GET",
            &addr,
            "/healthz",
            None,
            &[]
        )
        .filter(|(s, _)| *s == 200))
        .is_some(),
        "hub up: {}",
        node.log()
    );
    Hub {
        node,
        cfg,
        addr,
        broker,
    }
}

/// A gateway's directory with `agent.toml` for `node`, uplink on plain mqtt:// (enrollment
/// changes it), and `devices` from a simulator.
fn gateway(root: &Path, name: &str, node: &str, broker: u16, devices: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let text = format!(
        "# {name}\n[node]\nid = \"{node}\"   # the gateway's id\nsite = \"ministry/p/c/county-1/prison-1\"\n\n[uplink]\nurl = \"mqtt://127.0.0.1:{broker}\"\n\n[store]\npath = \"agent.db\"\n\n[profiles]\ndirs = [\"{root}/../device-profiles\"]\n\n[metrics]\nlisten = \"127.0.0.1:{http}\"\n{devices}",
        root = env!("CARGO_MANIFEST_DIR"),
        http = free_port(),
    );
    let cfg = dir.join("agent.toml");
    std::fs::write(&cfg, text).expect("write agent config");
    cfg
}

fn nothing_written(cfg: &Path, before: &str) {
    let tls = cfg.parent().expect("dir").join("tls");
    for f in ["node.key", "node.pem", "ca.pem"] {
        assert!(!tls.join(f).exists(), "{f} was written");
    }
    assert_eq!(
        std::fs::read_to_string(cfg).expect("config"),
        before,
        "config unchanged"
    );
}

#[test]
fn enrolling_with_the_hub_writes_the_key_0600_and_the_mqtts_url_and_a_token_works_once() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = start_hub(dir.path());
    let token = enrollment_token(&hub.cfg, "gw-1", GW_SITE, NodeKind::Gateway);

    let cfg = gateway(dir.path(), "gw-1", "gw-1", hub.broker, "");
    let before = std::fs::read_to_string(&cfg).expect("config");
    // A token issued for a hub (`--kind hub`): `vigil-agent enroll` is refused with the
    // hub's message — both kinds, the token to issue — and writes nothing.
    let hub_token = enrollment_token(&hub.cfg, "gw-1", GW_SITE, NodeKind::Hub);
    let err = enroll_agent(&hub.addr, &hub_token, &cfg).expect_err("a hub's token");
    assert!(
        err.contains("enrolls gw-1 as a hub")
            && err.contains("request enrolls a gateway")
            && err.contains("without --kind hub"),
        "{err}"
    );
    nothing_written(&cfg, &before);
    let enrolled = enroll_agent(&hub.addr, &token, &cfg).expect("enrolled");
    assert_eq!(enrolled.broker, format!("mqtts://127.0.0.1:{}", hub.broker));
    let tls = cfg.parent().expect("dir").join("tls");
    let mode = std::fs::metadata(tls.join("node.key"))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(tls.join("node.pem").exists() && tls.join("ca.pem").exists());
    // Only the URL changed; the comments are still there.
    assert_eq!(
        std::fs::read_to_string(&cfg).expect("config"),
        before.replace("mqtt://", "mqtts://")
    );

    // The same token again, from another gateway: refused, nothing written.
    let other = gateway(dir.path(), "gw-1-again", "gw-1", hub.broker, "");
    let before = std::fs::read_to_string(&other).expect("config");
    let err = enroll_agent(&hub.addr, &token, &other).expect_err("used token");
    assert!(err.contains("invalid or expired enrollment token"), "{err}");
    nothing_written(&other, &before);
    drop(hub.node);
}

#[test]
fn enrolling_over_the_hubs_https_trusts_it_through_the_pin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (http_port, broker) = (free_port(), free_port());
    let cfg = hub_config(
        dir.path(),
        "county-1",
        "county",
        http_port,
        &format!("listen = \"127.0.0.1:{broker}\""),
        None,
    );
    // HTTPS with a certificate from the hub's own CA (the CA sent after it in the chain).
    let text = std::fs::read_to_string(&cfg).expect("hub config");
    std::fs::write(&cfg, text.replacen("[http]\n", "[http]\ntls = true\n", 1)).expect("config");
    let hub = spawn_node("hub", &cfg, &dir.path().join("hub.log"));
    let addr = format!("127.0.0.1:{http_port}");
    assert!(
        wait_for(Duration::from_secs(20), || std::net::TcpStream::connect(
            &addr
        )
        .ok())
        .is_some(),
        "hub up: {}",
        hub.log()
    );
    let gw = gateway(dir.path(), "gw-1", "gw-1", broker, "");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let args = vigil_agent::enroll::EnrollArgs {
        hub: format!("https://{addr}"),
        token: enrollment_token(&cfg, "gw-1", GW_SITE, NodeKind::Gateway),
        config: gw.clone(),
        timeout: Duration::from_secs(30),
        force: false,
    };
    let mut out = Vec::new();
    let enrolled = rt
        .block_on(vigil_agent::enroll::enroll(&args, &mut out))
        .unwrap_or_else(|e| {
            panic!(
                "{e}\n{}\nhub log:\n{}",
                String::from_utf8_lossy(&out),
                hub.log()
            )
        });
    assert_eq!(enrolled.broker, format!("mqtts://127.0.0.1:{broker}"));
    let out = String::from_utf8_lossy(&out);
    assert!(!out.contains("plain http"), "{out}");
    drop(hub);
}

#[test]
fn a_token_for_another_node_or_a_pin_of_another_ca_is_refused_and_nothing_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = start_hub(dir.path());

    // The token was issued for gw-2; this gateway is gw-1.
    let cfg = gateway(dir.path(), "gw-1", "gw-1", hub.broker, "");
    let before = std::fs::read_to_string(&cfg).expect("config");
    let err = enroll_agent(
        &hub.addr,
        &enrollment_token(&hub.cfg, "gw-2", GW_SITE, NodeKind::Gateway),
        &cfg,
    )
    .expect_err("node mismatch");
    assert!(
        err.contains("\"gw-2\"") && err.contains("nothing written"),
        "{err}"
    );
    nothing_written(&cfg, &before);

    // A token whose pin is not this hub's CA (as if the address led to another hub).
    let token = enrollment_token(&hub.cfg, "gw-1", GW_SITE, NodeKind::Gateway);
    let (rest, _pin) = token.rsplit_once('.').expect("token parts");
    let forged = format!("{rest}.{}", "A".repeat(43));
    let err = enroll_agent(&hub.addr, &forged, &cfg).expect_err("pin mismatch");
    assert!(err.contains("not the one the token pins"), "{err}");
    nothing_written(&cfg, &before);
    drop(hub.node);
}

fn door_sim(rt: &tokio::runtime::Runtime) -> vigil_sim::SimHandle {
    let text = format!(
        "seed = 5\n[profiles]\ndirs = [\"{}/../device-profiles\"]\n\n[[device]]\nid = \"doors-block-a\"\nprofile = \"door-access-controller\"\nlisten = \"127.0.0.1:0\"\n[device.points.door2_forced]\nkind = \"event\"\nat = \"1s\"\n",
        env!("CARGO_MANIFEST_DIR")
    );
    let facility =
        vigil_sim::Facility::parse(Path::new("sim.toml"), &text).expect("valid sim config");
    rt.block_on(vigil_sim::Simulator::start(facility))
        .expect("simulator")
}

fn gate_denials(addr: &str) -> u64 {
    http("GET", addr, "/metrics", None, &[])
        .map(|(_, body)| {
            body.lines()
                .filter(|l| l.starts_with("vigil_gate_denials_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64
        })
        .unwrap_or(0)
}

#[test]
fn an_agent_enrolled_as_one_node_cannot_publish_as_another() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let sim = door_sim(&rt);
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = start_hub(dir.path());
    let api = hub_token(&hub.cfg);
    let device = format!(
        "\n[[modbus.device]]\nid = \"doors-block-a\"\nprofile = \"door-access-controller\"\ntransport = \"tcp\"\naddress = \"{}\"\npoll = \"250ms\"\n",
        sim.addr("doors-block-a").expect("bound")
    );
    // Enrolled as gw-a…
    let cfg = gateway(dir.path(), "gw", "gw-a", hub.broker, &device);
    enroll_gateway(&hub.cfg, &hub.addr, &cfg, "gw-a");
    // …then its config claims gw-b.
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(&cfg, text.replace("id = \"gw-a\"", "id = \"gw-b\"")).expect("config");
    let denied_before = gate_denials(&hub.addr);
    let log = dir.path().join("agent-b.log");
    let agent = spawn_node("agent", &cfg, &log);
    // The gate refuses it (client id gw-b with a certificate for gw-a)…
    let denied = wait_for(Duration::from_secs(30), || {
        (gate_denials(&hub.addr) > denied_before).then_some(())
    });
    assert!(
        denied.is_some(),
        "the gate refused the impostor\nagent log:\n{}\nhub log:\n{}",
        agent.log(),
        hub.node.log()
    );
    // …and while it keeps trying with the door alarm in its outbox, nothing of it reaches
    // the hub, as gw-b or otherwise.
    let raised_on_gateway = wait_for(Duration::from_secs(20), || {
        let (_, body) = http("GET", &cfg_metrics_addr(&cfg), "/api/v1/alerts", None, &[])?;
        body.contains("door2_forced").then_some(())
    });
    assert!(raised_on_gateway.is_some(), "the gateway raised the door");
    std::thread::sleep(Duration::from_secs(5));
    // What the hub holds is its own security alarm about the node the certificate names
    // (the refused CONNECT is an alarm an operator sees), nothing the impostor sent.
    let alerts = all_alerts(&hub.addr, &api).expect("alerts");
    assert!(
        !alerts.is_empty()
            && alerts.iter().all(|a| a["key"]
                .as_str()
                .is_some_and(|k| k.ends_with("/node/gw-a/security"))),
        "only the hub's security alarm about gw-a, nothing from the impostor: {alerts:?}"
    );
    let tree = hub_json(&hub.addr, "/api/v1/tree", &api).expect("tree");
    assert!(
        !tree.to_string().contains("gw-b"),
        "gw-b never appears in the hub's network: {tree}"
    );
    drop(agent);

    // The same gateway as the node its certificate names gets through.
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(&cfg, text.replace("id = \"gw-b\"", "id = \"gw-a\"")).expect("config");
    let agent = spawn_node("agent", &cfg, &dir.path().join("agent-a.log"));
    let arrived = wait_for(Duration::from_secs(40), || {
        all_alerts(&hub.addr, &api)?
            .iter()
            .find(|a| a["key"] == "gw-a/doors-block-a/door2_forced/state")
            .cloned()
    });
    assert!(
        arrived.is_some(),
        "as gw-a the door alert arrives\nagent log:\n{}",
        agent.log()
    );
    drop(agent);
    drop(hub.node);
    rt.block_on(sim.stop());
}

/// The `[metrics] listen` address of a gateway config written by [`gateway`].
fn cfg_metrics_addr(cfg: &Path) -> String {
    let text = std::fs::read_to_string(cfg).expect("config");
    text.lines()
        .find_map(|l| l.strip_prefix("listen = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("[metrics] listen")
        .to_owned()
}

/// `vigil-hub enroll --hub http://{parent_addr} --token - --config {child_cfg}` (its library
/// entry point), with a token from the parent for `child`.
fn enroll_hub(parent_cfg: &Path, parent_addr: &str, child_cfg: &Path, child: &str) {
    let token = enrollment_token(parent_cfg, child, "ministry", NodeKind::Hub);
    let cfg = vigil_hub::config::HubConfig::load(child_cfg).expect("valid hub config");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let enrolled = rt
        .block_on(vigil_hub::enroll::parent::enroll_with_parent(
            &cfg,
            child_cfg,
            &format!("http://{parent_addr}"),
            &token,
        ))
        .unwrap_or_else(|e| panic!("vigil-hub enroll: {e}"));
    assert!(enrolled.broker.starts_with("mqtts://"), "{enrolled:?}");
}

#[test]
fn a_gateway_county_and_city_enrolled_in_turn_carry_an_alarm_up_over_mtls() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let sim = door_sim(&rt);
    let dir = tempfile::tempdir().expect("tempdir");
    // The city hub, then the county hub enrolled with it (its [parent] url becomes mqtts://).
    let city = start_hub(&dir.path().join("city-dir"));
    let (county_http, county_broker) = (free_port(), free_port());
    let county_dir = dir.path().join("county-dir");
    std::fs::create_dir_all(&county_dir).expect("mkdir");
    let county_cfg = hub_config(
        &county_dir,
        "county-2",
        "county",
        county_http,
        &format!("listen = \"127.0.0.1:{county_broker}\""),
        Some(&format!("mqtt://127.0.0.1:{}", city.broker)),
    );
    enroll_hub(&city.cfg, &city.addr, &county_cfg, "county-2");
    let county_text = std::fs::read_to_string(&county_cfg).expect("county config");
    assert!(
        county_text.contains(&format!("url = \"mqtts://127.0.0.1:{}\"", city.broker)),
        "{county_text}"
    );
    let county_addr = format!("127.0.0.1:{county_http}");
    let county = spawn_node("hub", &county_cfg, &county_dir.join("hub.log"));
    assert!(
        wait_for(Duration::from_secs(20), || http(
            "GET",
            &county_addr,
            "/healthz",
            None,
            &[]
        )
        .filter(|(s, _)| *s == 200))
        .is_some(),
        "county up: {}",
        county.log()
    );
    // The gateway enrolled with the county.
    let device = format!(
        "\n[[modbus.device]]\nid = \"doors-block-a\"\nprofile = \"door-access-controller\"\ntransport = \"tcp\"\naddress = \"{}\"\npoll = \"250ms\"\n",
        sim.addr("doors-block-a").expect("bound")
    );
    let agent_cfg = gateway(dir.path(), "gw", "gw-c", county_broker, &device);
    enroll_gateway(&county_cfg, &county_addr, &agent_cfg, "gw-c");
    let agent = spawn_node("agent", &agent_cfg, &dir.path().join("agent.log"));

    // The forced door (critical) goes up both links.
    let api = hub_token(&city.cfg);
    let arrived = wait_for(Duration::from_secs(60), || {
        all_alerts(&city.addr, &api)?
            .iter()
            .find(|a| a["key"] == "gw-c/doors-block-a/door2_forced/state")
            .cloned()
    });
    assert!(
        arrived.is_some(),
        "the door alarm reached the city\nagent log:\n{}\ncounty log:\n{}\ncity log:\n{}",
        agent.log(),
        county.log(),
        city.node.log()
    );
    drop(agent);
    drop(county);
    drop(city.node);
    rt.block_on(sim.stop());
}
