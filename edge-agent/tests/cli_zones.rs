//! The site topology in `agent.toml` as `vigil-agent check` sees it: a multi-zone
//! controller's `zones` map is checked against its profile, and a key that names no zone of
//! the profile is a config error (exit 2) naming the file, the line, the key and the device.
//! The real binary, the shipped profiles.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const AGENT: &str = env!("CARGO_BIN_EXE_vigil-agent");

/// A config whose fence controller (at line 16) has the zone lines `zones`.
fn config(dir: &Path, zones: &str) -> PathBuf {
    let text = format!(
        r#"[node]
id = "gw-prison-3"
site = "ministry/guangdong/guangzhou/baiyun/prison-3"

[uplink]
url = "mqtt://127.0.0.1:1883"

[store]
path = "agent.db"

[profiles]
dirs = ["{profiles}"]

[metrics]
listen = "127.0.0.1:0"

[[modbus.device]]
id = "fence-north"
profile = "perimeter-fence-controller"
transport = "tcp"
address = "127.0.0.1:1502"
{zones}
"#,
        profiles = concat!(env!("CARGO_MANIFEST_DIR"), "/../device-profiles"),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn check(path: &Path) -> Output {
    Command::new(AGENT)
        .args(["check", "--config"])
        .arg(path)
        .output()
        .expect("runs")
}

#[test]
fn a_zones_map_of_the_profiles_zones_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(
        dir.path(),
        "zone = \"north-perimeter\"\nzones = { fence-zone-3 = \"north-east-corner\" }",
    );
    let out = check(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_zones_key_the_profile_does_not_name_is_a_config_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(
        dir.path(),
        "zone = \"north-perimeter\"\nzones = { fence-zone-3 = \"north-east-corner\", fence-zone-9 = \"north-east-corner\" }",
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: {}:23: modbus.device[0].zones.fence-zone-9: device \"fence-north\": profile \"perimeter-fence-controller\" has no zone \"fence-zone-9\" (its zones are fence-zone-1, fence-zone-2, ",
            path.display()
        )),
        "{stderr}"
    );
}
