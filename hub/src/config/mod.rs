//! `hub.toml`: the hub's configuration (docs/ARCHITECTURE.md#configuration-files), as typed serde
//! structs with unknown keys rejected, and its semantic checks ([`Validate`]). Loading goes through
//! `vigil-config`, so every error names the file, the line and the key, and `vigil-hub`
//! exits 2 on it.
//!
//! ```toml
//! [node]
//! id = "county-baiyun"
//! level = "county"                      # ministry | province | city | county | facility
//! name = "Baiyun County Command Centre"
//! site = "ministry/guangdong/guangzhou/baiyun"   # optional; as many segments as the level
//!
//! [http]
//! listen = "127.0.0.1:8080"             # the API, the console, /metrics
//! # tls = true                          # HTTPS; plain HTTP off loopback needs allow_plaintext
//! # header_read_timeout = "10s"         # also see idle_timeout, max_connections,
//! #                                     # max_connections_per_address (crate::listener)
//!
//! [mqtt]
//! listen = "127.0.0.1:1883"             # the embedded broker; or url = "mqtt://broker:1883"
//!
//! [parent]
//! url = "mqtt://127.0.0.1:1884"         # absent at the ministry
//!
//! [store]
//! path = "/var/lib/vigil/hub.db"
//!
//! [escalation]
//! min_severity = "minor"                # what goes up to the parent (no rule matching)
//! [[escalation.rule]]                   # rules by kind and site, first match wins
//! site = "ministry/guangdong/guangzhou/baiyun/prison-3"   # (crate::escalation)
//! escalate = false
//!
//! [auth]                                # console sign-in; every key optional
//! session_idle = "30m"                  # a session unused this long ends
//! session_max = "12h"                   # a session ends this long after sign-in, used or not
//! secure_cookie = false                 # mark the session cookie Secure (served over HTTPS)
//! sign_in_free_failures = 5             # failed sign-ins (per name, per client) before delays
//! sign_in_delay = "1s"                  # the first delay; each further failure doubles it
//! sign_in_max_delay = "15m"             # the longest delay
//! sign_in_concurrency = 4               # password checks at once, hub-wide
//! open_metrics = true                   # GET /metrics without signing in
//!
//! [[child]]                             # a child of an external broker, not enrolled here:
//! node = "gw-prison-3"                  # its site binding (an enrolled child's comes from
//! site = "ministry/guangdong/guangzhou/baiyun/prison-3"   # `enroll-token --site`)
//! kind = "gateway"                      # or "hub": only a hub may report nodes below it
//! ```

use std::path::PathBuf;

use serde::Deserialize;
use vigil_config::{Problem, Validate};
use vigil_core::{Level, NodeId, SitePath};

mod auth;
mod http;
mod link;
mod mqtt;
mod pki;

pub use self::auth::AuthSection;
pub use self::http::{default_http_listen, HttpSection};
pub use self::link::LinkSection;
pub use self::mqtt::{default_mqtt_listen, Broker, BrokerUrl, MqttSection, ParentSection};
pub use self::pki::CaSection;
pub use crate::escalation::EscalationSection;

/// The whole `hub.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// `[node]`: who this hub is.
    pub node: NodeSection,
    /// `[http]`: the one HTTP listener (API, console, feeds, metrics).
    #[serde(default)]
    pub http: HttpSection,
    /// `[mqtt]`: the broker the hub's children connect to. Absent: the embedded broker on
    /// [`default_mqtt_listen`].
    #[serde(default)]
    pub mqtt: Option<MqttSection>,
    /// `[parent]`: the parent hub's broker; absent at the ministry.
    #[serde(default)]
    pub parent: Option<ParentSection>,
    /// `[store]`: the hub's SQLite database.
    pub store: StoreSection,
    /// `[escalation]`: what this hub sends up to its parent.
    #[serde(default)]
    pub escalation: EscalationSection,
    /// `[auth]`: sessions, sign-in rate limiting, what is open without signing in.
    #[serde(default)]
    pub auth: AuthSection,
    /// `[ca]`: the hub's certificate authority (enrollment, mTLS).
    #[serde(default)]
    pub ca: CaSection,
    /// `[link]`: how the children's links are judged (offline, backlog, clock skew).
    #[serde(default)]
    pub link: LinkSection,
    /// `[[child]]`: the site bindings of children that are not enrolled here (they connect
    /// through an external broker with certificates from elsewhere). An enrolled child's
    /// binding is the `--site` of its token (docs/ARCHITECTURE.md#site-bindings-and-admission).
    #[serde(default, rename = "child")]
    pub children: Vec<ChildSection>,
}

/// `[[child]]`: the site binding of a child not enrolled here.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildSection {
    /// The child's node id (the client id and topics it uses on the broker).
    pub node: NodeId,
    /// The site subtree it speaks for: this hub accepts from it only alerts at sites inside
    /// it. Inside this hub's own `[node] site`, when it has one.
    pub site: SitePath,
    /// `"gateway"` (the default: it speaks only as itself) or `"hub"` (it may report and
    /// relay the nodes enrolled below it).
    #[serde(default)]
    pub kind: ChildKind,
}

/// `[[child]] kind`: what a declared child is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChildKind {
    /// A hub: may report the nodes enrolled below it.
    Hub,
    /// A gateway: speaks only as itself.
    #[default]
    Gateway,
}

impl From<ChildKind> for vigil_store::NodeKind {
    fn from(kind: ChildKind) -> Self {
        match kind {
            ChildKind::Hub => vigil_store::NodeKind::Hub,
            ChildKind::Gateway => vigil_store::NodeKind::Gateway,
        }
    }
}

/// `[node]`: the hub's identity and place in the network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// The hub's node id, used in MQTT topics (`vigil/v1/up/{id}`) and as the origin of the
    /// events its operators create.
    pub id: NodeId,
    /// The hub's level: `ministry`, `province`, `city`, `county` (or `facility`, for a
    /// facility's own control room).
    pub level: Level,
    /// The command centre's name, as the console shows it.
    pub name: String,
    /// The hub's site path, with as many segments as its level is deep (a county:
    /// `ministry/province/city/county`). Optional: without it, the tree shows the site its
    /// alerts have in common.
    #[serde(default)]
    pub site: Option<SitePath>,
}

/// `[store]`: the hub's SQLite database (alert events, outboxes).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// The database file; its directory is created if missing.
    pub path: PathBuf,
}

impl HubConfig {
    /// Loads and validates `hub.toml`; a relative `[store] path` is taken from the config
    /// file's directory, so the hub opens the same file wherever it is started from.
    pub fn load(path: &std::path::Path) -> Result<Self, vigil_config::ConfigErrors> {
        let mut config: HubConfig = vigil_config::load(path)?;
        if config.store.path.is_relative() {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            config.store.path = dir.join(&config.store.path);
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        config.resolve_tls_paths(dir);
        Ok(config)
    }
}

/// The most characters of `[node] name`.
const MAX_NAME_LEN: usize = 200;

impl Validate for HubConfig {
    fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let level = self.node.level;
        let name = self.node.name.trim();
        if name.is_empty() {
            out.push(Problem::new(
                "node.name",
                "must not be empty: the command centre's name, as the console shows it",
            ));
        } else if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
            out.push(Problem::new(
                "node.name",
                format!("must be at most {MAX_NAME_LEN} characters without control characters"),
            ));
        }
        if let Some(site) = &self.node.site {
            if site.depth() != level.depth() {
                out.push(Problem::new(
                    "node.site",
                    format!(
                        "{site:?} has {} segment(s), but a {level} hub's site has {} \
                         (ministry/province/city/county/facility, as deep as the level)",
                        site.depth(),
                        level.depth()
                    ),
                ));
            }
        }
        match &self.mqtt {
            None => {}
            Some(MqttSection {
                listen: Some(_),
                url: Some(_),
                ..
            }) => out.push(Problem::new(
                "mqtt.url",
                "give either listen (run the embedded broker) or url (use an external broker), not both",
            )),
            Some(MqttSection {
                listen: None,
                url: None,
                ..
            }) => out.push(Problem::new(
                "mqtt",
                "give listen = \"127.0.0.1:1883\" (the embedded broker) or url = \"mqtt://host:1883\" (an external broker)",
            )),
            Some(MqttSection {
                url: Some(_),
                listen: None,
                ..
            })
            | Some(MqttSection {
                listen: Some(_),
                url: None,
                ..
            }) => {}
        }
        for (i, child) in self.children.iter().enumerate() {
            if child.node == self.node.id {
                out.push(Problem::new(
                    format!("child[{i}].node"),
                    format!(
                        "{} is this hub's own id: a child bound under it would be trusted as this hub; give the child's own id",
                        child.node
                    ),
                ));
            }
            if self.children[..i].iter().any(|c| c.node == child.node) {
                out.push(Problem::new(
                    format!("child[{i}].node"),
                    format!(
                        "{} is declared twice: keep one [[child]] per node",
                        child.node
                    ),
                ));
            }
            if let Some(own) = &self.node.site {
                if !child.site.is_within(own) {
                    out.push(Problem::new(
                        format!("child[{i}].site"),
                        format!(
                            "{} is not inside this hub's site {own} ([node] site): a child speaks only for sites inside its parent's",
                            child.site
                        ),
                    ));
                }
            }
        }
        if self.parent.is_some() && level == Level::Ministry {
            out.push(Problem::new(
                "parent",
                "the ministry is the top of the network and has no parent: remove [parent]",
            ));
        }
        self.auth.problems(&mut out);
        self.link.problems(&mut out);
        self.escalation.problems(&mut out);
        crate::listener::validate(&self.http, &mut out);
        self.validate_tls(&mut out);
        if self.store.path.as_os_str().is_empty() {
            out.push(Problem::new(
                "store.path",
                "must name the database file, e.g. /var/lib/vigil/hub.db",
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use vigil_core::Severity;

    use super::*;

    const GOOD: &str = r#"
[node]
id = "county-baiyun"
level = "county"
name = "Baiyun County Command Centre"

[http]
listen = "127.0.0.1:8080"

[mqtt]
listen = "127.0.0.1:1883"

[parent]
url = "mqtt://127.0.0.1:1884"

[store]
path = "/var/lib/vigil/hub.db"
"#;

    fn parse(text: &str) -> Result<HubConfig, vigil_config::ConfigErrors> {
        vigil_config::parse(Path::new("hub.toml"), text)
    }

    #[test]
    fn the_design_example_loads_with_defaults() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.node.level, Level::County);
        assert_eq!(
            c.broker(),
            Broker::Embedded {
                listen: default_mqtt_listen()
            }
        );
        assert_eq!(
            c.parent_url(),
            Some(BrokerUrl {
                tls: false,
                host: "127.0.0.1".into(),
                port: 1884
            })
        );
        assert_eq!(c.escalation.min_severity, Severity::Minor);
        assert!(c.escalation.escalates(Severity::Critical));
        assert!(!c.escalation.escalates(Severity::Warning));
    }

    #[test]
    fn minimal_ministry_config() {
        let c = parse(
            "[node]\nid = \"ministry\"\nlevel = \"ministry\"\nname = \"Ministry\"\n\n[store]\npath = \"hub.db\"\n",
        )
        .expect("valid");
        assert_eq!(c.http.listen, default_http_listen());
        assert!(c.parent.is_none());
        assert_eq!(
            c.broker(),
            Broker::Embedded {
                listen: default_mqtt_listen()
            }
        );
    }

    #[test]
    fn external_broker() {
        let c = parse(&GOOD.replace(
            "listen = \"127.0.0.1:1883\"",
            "url = \"mqtts://broker.example:8884\"",
        ))
        .expect("valid");
        assert_eq!(
            c.broker(),
            Broker::External {
                url: BrokerUrl {
                    tls: true,
                    host: "broker.example".into(),
                    port: 8884
                }
            }
        );
    }

    fn problem(text: &str) -> (Option<usize>, String, String) {
        let e = parse(text).expect_err("invalid");
        let e = &e.0[0];
        (e.line, e.key.clone(), e.message.clone())
    }

    #[test]
    fn both_or_neither_broker_is_a_problem() {
        let (line, key, _) = problem(&GOOD.replace(
            "listen = \"127.0.0.1:1883\"",
            "listen = \"127.0.0.1:1883\"\nurl = \"mqtt://b:1\"",
        ));
        assert_eq!((line, key.as_str()), (Some(12), "mqtt.url"));
        let (line, key, _) = problem(&GOOD.replace("listen = \"127.0.0.1:1883\"\n", ""));
        assert_eq!((line, key.as_str()), (Some(10), "mqtt"));
    }

    #[test]
    fn a_parent_at_the_ministry_is_a_problem() {
        let (line, key, msg) = problem(&GOOD.replace("\"county\"", "\"ministry\""));
        assert_eq!((line, key.as_str()), (Some(13), "parent"), "{msg}");
    }

    #[test]
    fn bad_values_are_named() {
        let (line, key, msg) = problem(&GOOD.replace("\"county\"", "\"town\""));
        assert_eq!((line, key.as_str()), (Some(4), "node.level"), "{msg}");
        let (line, key, _) = problem(&GOOD.replace("mqtt://127.0.0.1:1884", "http://x"));
        assert_eq!((line, key.as_str()), (Some(14), "parent.url"));
        let (line, key, _) = problem(&GOOD.replace("[store]", "[store]\npaht = \"x\""));
        assert_eq!((line, key.as_str()), (Some(17), "store.paht"));
        let (_, key, msg) = problem(&GOOD.replace(
            "name = \"Baiyun County Command Centre\"",
            "name = \"B\"\nsite = \"ministry/gd\"",
        ));
        assert_eq!(key, "node.site", "{msg}");
        let (_, key, _) = problem(&GOOD.replace("Baiyun County Command Centre", "  "));
        assert_eq!(key, "node.name");
        let (_, key, _) = problem(&format!("{GOOD}\n[escalation]\nmin_severity = \"huge\"\n"));
        assert_eq!(key, "escalation.min_severity");
    }

    #[test]
    fn auth_defaults_and_checks() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.auth, AuthSection::default());
        assert_eq!(c.auth.session_idle, Duration::from_secs(1800));
        assert!(c.auth.open_metrics && !c.auth.secure_cookie);
        let c = parse(&format!(
            "{GOOD}\n[auth]\nsession_idle = \"5m\"\nsecure_cookie = true\nsign_in_delay = \"250ms\"\n"
        ))
        .expect("valid");
        assert_eq!(c.auth.session_idle, Duration::from_secs(300));
        assert_eq!(c.auth.sign_in_delay, Duration::from_millis(250));
        let (line, key, _) = problem(&format!(
            "{GOOD}\n[auth]\nsession_idle = \"2h\"\nsession_max = \"1h\"\n"
        ));
        assert_eq!((line, key.as_str()), (Some(21), "auth.session_max"));
        let (_, key, _) = problem(&format!("{GOOD}\n[auth]\nsesion_idle = \"2h\"\n"));
        assert_eq!(key, "auth.sesion_idle");
    }

    #[test]
    fn child_bindings_are_checked_against_the_hubs_site() {
        let with_site = GOOD.replace(
            "name = \"Baiyun County Command Centre\"",
            "name = \"B\"\nsite = \"m/gd/gz/by\"",
        );
        let c = parse(&format!(
            "{with_site}\n[[child]]\nnode = \"gw-1\"\nsite = \"m/gd/gz/by/prison-3\"\n"
        ))
        .expect("valid");
        assert_eq!(c.children.len(), 1);
        assert_eq!(c.children[0].site.as_str(), "m/gd/gz/by/prison-3");
        let (_, key, msg) = problem(&format!(
            "{with_site}\n[[child]]\nnode = \"gw-1\"\nsite = \"m/gd/gz/other/p\"\n"
        ));
        assert_eq!(key, "child[0].site", "{msg}");
        let (_, key, _) = problem(&format!(
            "{with_site}\n[[child]]\nnode = \"county-baiyun\"\nsite = \"m/gd/gz/by\"\n"
        ));
        assert_eq!(key, "child[0].node");
    }

    #[test]
    fn link_keys_are_checked() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.link, LinkSection::default());
        let (line, key, msg) = problem(&format!("{GOOD}\n[link]\noffline_after = \"0s\"\n"));
        assert_eq!(
            (line, key.as_str()),
            (Some(20), "link.offline_after"),
            "{msg}"
        );
        let (_, key, _) = problem(&format!("{GOOD}\n[link]\nbacklog_alarm = 0\n"));
        assert_eq!(key, "link.backlog_alarm");
    }

    /// The URL syntax is tested in vigil-config; here: the hub's keys use it.
    #[test]
    fn broker_urls() {
        let (line, key, message) = problem(&GOOD.replace(
            "listen = \"127.0.0.1:1883\"",
            "url = \"mqtt://[::1]/vigil\"",
        ));
        assert_eq!(key, "mqtt.url");
        assert!(line.is_some());
        assert!(message.contains("without a path"), "{message}");
        assert_eq!(
            BrokerUrl::parse("mqtt://[::1]:1884").map(|u| (u.host, u.port)),
            Ok(("::1".to_owned(), 1884))
        );
    }
}
