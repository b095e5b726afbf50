//! `[[mqtt.subscription]]`: one MQTT subscription and the decoder that maps its messages to
//! points, with its semantic checks and the broker URL syntax.
//!
//! ```toml
//! [[mqtt.subscription]]
//! url = "mqtt://127.0.0.1:1883"            # the broker; mqtt://[user[:password]@]host[:port]
//! topic = "facility/env/+/telemetry"       # a topic filter, subscribed with QoS 1
//! decoder = "json"                         # json | number | sparkplug_b
//! device = "env-{1}"                       # json, number: {n} = what the n-th wildcard matched
//! timestamp = "ts"                         # json: epoch ms or RFC 3339 field; default: arrival
//! [mqtt.subscription.fields]               # json: point = "field path"; default: every field
//! temperature = "temp"
//! humidity = "env.rh"
//!
//! [[mqtt.subscription]]
//! url = "mqtt://127.0.0.1:1883"
//! topic = "spBv1.0/prison-3/#"
//! decoder = "sparkplug_b"
//! rebirth = false                          # sparkplug_b: never send NCMD rebirth requests
//! ```
//!
//! Subscriptions with the same broker share one connection; their topic filters must not
//! overlap ([`validate_subscriptions`]), or a message would be decoded twice.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use vigil_config::{BrokerLogin, BrokerUrl, BrokerUrlError, Problem};

use crate::source::mqtt::{DeviceTemplate, FieldPath, TopicFilter};

/// How a message's payload becomes readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decoder {
    /// A JSON object; `fields` map points to field paths.
    Json,
    /// The payload is a number (or `true`/`false`).
    Number,
    /// Sparkplug B protobuf (NBIRTH/NDATA/DBIRTH/DDATA, deaths).
    SparkplugB,
}

impl Decoder {
    /// The name used in `decoder = "…"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Decoder::Json => "json",
            Decoder::Number => "number",
            Decoder::SparkplugB => "sparkplug_b",
        }
    }
}

/// One subscription.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSubscription {
    /// The broker: `mqtt://[user[:password]@]host[:port]` (port 1883 by default).
    pub url: String,
    /// The topic filter, wildcards allowed (`facility/env/+/telemetry`, `spBv1.0/#`).
    /// Subscribed with QoS 1.
    pub topic: String,
    /// How payloads become readings.
    pub decoder: Decoder,
    /// json: point name → field path (`"temp"`, `"env.rh"`, `"values.0"`). Empty: every
    /// number, boolean and string of the object is a point named after its path.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// json: the field path of the readings' timestamp (epoch milliseconds or RFC 3339).
    /// Absent: the time of arrival.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// json, number: the device name of the points; `{1}`, `{2}`… stand for what the topic
    /// filter's wildcards matched. Absent: the topic with `/` written `.`
    /// (`facility.env.3.telemetry`). sparkplug_b names devices itself (device or edge node
    /// id).
    #[serde(default)]
    pub device: Option<String>,
    /// number: the point name (required).
    #[serde(default)]
    pub point: Option<String>,
    /// sparkplug_b: whether the agent, as a Sparkplug host application, asks an edge node to
    /// publish its births again (an NCMD `Node Control/Rebirth` = true on
    /// `spBv1.0/{group_id}/NCMD/{edge_node_id}`, on this subscription's broker connection)
    /// when it gets data it cannot interpret: data from a node whose NBIRTH it has not seen
    /// (the agent started or reconnected after it), a metric alias no birth bound, or a gap
    /// in the node's `seq`. At most one request per edge node every 5 s while the condition
    /// lasts; counted in `vigil_mqtt_sparkplug_rebirth_requests_total`. Absent: `true`. Set
    /// `false` where hosts may not command edge nodes (the broker's ACL refuses NCMD, or
    /// site policy): data of a node then waits for its next birth. Only for
    /// `decoder = "sparkplug_b"`.
    #[serde(default)]
    pub rebirth: Option<bool>,
}

/// Why `rebirth` is refused outside `sparkplug_b`.
const REBIRTH_ONLY: &str = ": only Sparkplug B edge nodes answer rebirth requests; remove it";

/// A subscription's broker, from `mqtt://[user[:password]@]host[:port]`: the shared
/// [`BrokerUrl`] and the login the URL may carry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscriptionBroker {
    /// Where the broker is (always plain `mqtt://`).
    pub address: BrokerUrl,
    /// The user name and password, when the URL gives them (`Debug` hides the password).
    pub login: Option<BrokerLogin>,
}

impl SubscriptionBroker {
    /// Parses `mqtt://[user[:password]@]host[:port]` ([`BrokerUrl::parse_with_login`]).
    /// `mqtts://` is refused: subscriptions connect without TLS (to the facility's local
    /// broker).
    pub fn parse(url: &str) -> Result<Self, BrokerUrlError> {
        let (address, login) = BrokerUrl::parse_with_login(url)?;
        if address.tls {
            return Err(BrokerUrlError {
                url: vigil_config::redact_url(url),
                reason: "mqtts:// (TLS) is not supported for subscriptions yet: use mqtt://"
                    .to_owned(),
            });
        }
        Ok(SubscriptionBroker { address, login })
    }
}

impl fmt::Display for SubscriptionBroker {
    /// `mqtt://[user@]host:port`, never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.login {
            None => write!(f, "{}", self.address),
            Some(login) => {
                let url = self.address.to_string();
                let rest = url.strip_prefix("mqtt://").unwrap_or(&url);
                write!(f, "mqtt://{}@{rest}", login.username)
            }
        }
    }
}

impl MqttSubscription {
    /// Whether a `sparkplug_b` subscription asks edge nodes for rebirths ([`rebirth`]
    /// absent: yes).
    ///
    /// [`rebirth`]: MqttSubscription::rebirth
    pub const fn requests_rebirth(&self) -> bool {
        match self.rebirth {
            Some(on) => on,
            None => true,
        }
    }

    /// The semantic checks of one subscription; `at` is its key path.
    pub fn validate(&self, at: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut problem =
            |key: &str, message: String| out.push(Problem::new(format!("{at}.{key}"), message));
        if let Err(e) = SubscriptionBroker::parse(&self.url) {
            problem("url", e.to_string());
        }
        let filter = match TopicFilter::parse(&self.topic) {
            Ok(f) => Some(f),
            Err(e) => {
                problem("topic", e.to_string());
                None
            }
        };
        let decoder = self.decoder.as_str();
        let unused =
            |key: &str, what: &str| format!("{key} is not used by decoder = \"{decoder}\"{what}");
        match self.decoder {
            Decoder::Json => {
                for (point, path) in &self.fields {
                    if !crate::source::mqtt::valid_point_name(point) {
                        problem(
                            &format!("fields.{point}"),
                            format!("{point:?} is not a valid point name: use 1-64 lowercase letters, digits, '-' and '_'"),
                        );
                    }
                    if let Err(e) = FieldPath::parse(path) {
                        problem(&format!("fields.{point}"), e.to_string());
                    }
                }
                if let Some(Err(e)) = self.timestamp.as_deref().map(FieldPath::parse) {
                    problem("timestamp", e.to_string());
                }
                if self.point.is_some() {
                    problem("point", unused("point", ": name points with [fields]"));
                }
                if self.rebirth.is_some() {
                    problem("rebirth", unused("rebirth", REBIRTH_ONLY));
                }
            }
            Decoder::Number => {
                match &self.point {
                    None => problem("point", "decoder = \"number\" needs the point name, e.g. point = \"temperature\"".into()),
                    Some(p) if !crate::source::mqtt::valid_point_name(p) => problem(
                        "point",
                        format!("{p:?} is not a valid point name: use 1-64 lowercase letters, digits, '-' and '_'"),
                    ),
                    Some(_) => {}
                }
                if !self.fields.is_empty() {
                    problem("fields", unused("fields", ""));
                }
                if self.timestamp.is_some() {
                    problem(
                        "timestamp",
                        unused("timestamp", ": readings are stamped on arrival"),
                    );
                }
                if self.rebirth.is_some() {
                    problem("rebirth", unused("rebirth", REBIRTH_ONLY));
                }
            }
            Decoder::SparkplugB => {
                for (key, set) in [
                    ("fields", !self.fields.is_empty()),
                    ("timestamp", self.timestamp.is_some()),
                    ("point", self.point.is_some()),
                ] {
                    if set {
                        problem(key, unused(key, ": Sparkplug metrics name their points"));
                    }
                }
                if self.device.is_some() {
                    problem(
                        "device",
                        unused(
                            "device",
                            ": devices are named by their Sparkplug device or edge node id",
                        ),
                    );
                }
                let namespace = TopicFilter::parse("spBv1.0/#");
                if let (Some(f), Ok(namespace)) = (&filter, namespace) {
                    if !f.overlaps(&namespace) {
                        problem(
                            "topic",
                            format!(
                                "{:?} cannot match Sparkplug B topics (spBv1.0/…)",
                                self.topic
                            ),
                        );
                    }
                }
            }
        }
        if let (Some(template), Some(f), false) =
            (&self.device, &filter, self.decoder == Decoder::SparkplugB)
        {
            if let Err(e) = DeviceTemplate::parse(template, f.wildcards()) {
                problem("device", e.to_string());
            }
        }
        out
    }
}

/// The checks across subscriptions: on one broker, no two topic filters may match the same
/// topic (a message would be decoded twice, or by the wrong decoder).
pub fn validate_subscriptions(subscriptions: &[MqttSubscription]) -> Vec<Problem> {
    let mut out = Vec::new();
    let parsed: Vec<_> = subscriptions
        .iter()
        .map(|s| {
            (
                SubscriptionBroker::parse(&s.url).ok(),
                TopicFilter::parse(&s.topic).ok(),
            )
        })
        .collect();
    for (j, (url_j, filter_j)) in parsed.iter().enumerate() {
        for (i, (url_i, filter_i)) in parsed.iter().enumerate().take(j) {
            if let (Some(ui), Some(uj), Some(fi), Some(fj)) = (url_i, url_j, filter_i, filter_j) {
                if ui.address == uj.address && fi.overlaps(fj) {
                    out.push(Problem::new(
                        format!("mqtt.subscription[{j}].topic"),
                        format!(
                            "{:?} overlaps {:?} of mqtt.subscription[{i}] on the same broker: a message would be decoded twice; make the filters disjoint",
                            fj.as_str(),
                            fi.as_str()
                        ),
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use vigil_config::{ConfigErrors, Validate};

    /// The `[mqtt]` part of an agent.toml, checked like the agent checks it.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        mqtt: Section,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Section {
        subscription: Vec<MqttSubscription>,
    }

    impl Validate for Doc {
        fn validate(&self) -> Vec<Problem> {
            let subs = &self.mqtt.subscription;
            let mut out: Vec<Problem> = subs
                .iter()
                .enumerate()
                .flat_map(|(i, s)| s.validate(&format!("mqtt.subscription[{i}]")))
                .collect();
            out.extend(validate_subscriptions(subs));
            out
        }
    }

    fn load(text: &str) -> Result<Doc, ConfigErrors> {
        vigil_config::parse(Path::new("agent.toml"), text)
    }

    /// `file:line: key: message` of each problem of one subscription's body.
    fn problems(body: &str) -> Vec<String> {
        match load(&format!("[[mqtt.subscription]]\n{body}")) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    /// The URL syntax is tested in vigil-config; here: the login and plain MQTT only.
    #[test]
    fn broker_urls() {
        let u = SubscriptionBroker::parse("mqtt://agent:s3cr:et@[::1]:1884").expect("valid");
        assert_eq!((u.address.host.as_str(), u.address.port), ("::1", 1884));
        let login = u.login.as_ref().expect("login");
        assert_eq!(login.username, "agent");
        assert_eq!(login.password.as_deref(), Some("s3cr:et"));
        assert_eq!(u.to_string(), "mqtt://agent@[::1]:1884");
        assert!(!format!("{u:?}").contains("s3cr"));
        let u = SubscriptionBroker::parse("mqtt://broker").expect("valid");
        assert_eq!((u.address.port, u.login.is_none()), (1883, true));
        assert_eq!(u.to_string(), "mqtt://broker:1883");
        for bad in [
            "tcp://h:1",
            "mqtts://h:8883",
            "mqtt://h:1/path",
            "mqtt://@h",
        ] {
            assert!(SubscriptionBroker::parse(bad).is_err(), "{bad}");
        }
        let e = SubscriptionBroker::parse("mqtt://u:secret@h:x").expect_err("bad port");
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn the_documented_examples_are_valid() {
        let text = r##"
[[mqtt.subscription]]
url = "mqtt://127.0.0.1:1883"
topic = "facility/env/+/telemetry"
decoder = "json"
device = "env-{1}"
timestamp = "ts"
[mqtt.subscription.fields]
temperature = "temp"
humidity = "env.rh"

[[mqtt.subscription]]
url = "mqtt://127.0.0.1"
topic = "facility/door/+/open"
decoder = "number"
device = "door-{1}"
point = "open"

[[mqtt.subscription]]
url = "mqtt://127.0.0.1:1883"
topic = "spBv1.0/prison-3/#"
decoder = "sparkplug_b"

[[mqtt.subscription]]
url = "mqtt://127.0.0.1:1883"
topic = "spBv1.0/prison-4/#"
decoder = "sparkplug_b"
rebirth = false

[[mqtt.subscription]]
url = "mqtt://user:pass@other-broker"
topic = "#"
decoder = "json"
"##;
        let doc = load(text).expect("valid");
        let subs = &doc.mqtt.subscription;
        assert_eq!(subs.len(), 5);
        assert!(subs[2].requests_rebirth(), "on by default");
        assert!(!subs[3].requests_rebirth());
    }

    #[test]
    fn problems_name_file_line_and_key() {
        let cases = [
            ("url = \"http://h\"\ntopic = \"a\"\ndecoder = \"json\"", "agent.toml:2: mqtt.subscription[0].url: "),
            ("url = \"mqtt://h\"\ntopic = \"a/#/b\"\ndecoder = \"json\"", "agent.toml:3: mqtt.subscription[0].topic: "),
            ("url = \"mqtt://h\"\ntopic = \"a/+\"\ndecoder = \"json\"\ndevice = \"x-{2}\"", "agent.toml:5: mqtt.subscription[0].device: "),
            ("url = \"mqtt://h\"\ntopic = \"a\"\ndecoder = \"json\"\nfields = { Temp = \"t\" }", "mqtt.subscription[0].fields.Temp: "),
            ("url = \"mqtt://h\"\ntopic = \"a\"\ndecoder = \"json\"\nfields = { t = \"a..b\" }", "mqtt.subscription[0].fields.t: "),
            ("url = \"mqtt://h\"\ntopic = \"a\"\ndecoder = \"json\"\ntimestamp = \"\"", "mqtt.subscription[0].timestamp: "),
            ("url = \"mqtt://h\"\ntopic = \"a\"\ndecoder = \"json\"\npoint = \"p\"", "mqtt.subscription[0].point: "),
            ("url = \"mqtt://h\"\ntopic = \"a\"\ndecoder = \"number\"", "mqtt.subscription[0].point: "),
            ("url = \"mqtt://h\"\ntopic = \"a\"\ndecoder = \"number\"\npoint = \"Bad Name\"", "mqtt.subscription[0].point: "),
            ("url = \"mqtt://h\"\ntopic = \"a\"\ndecoder = \"number\"\npoint = \"p\"\nfields = { a = \"a\" }", "mqtt.subscription[0].fields: "),
            ("url = \"mqtt://h\"\ntopic = \"spBv1.0/#\"\ndecoder = \"sparkplug_b\"\ndevice = \"d\"", "mqtt.subscription[0].device: "),
            ("url = \"mqtt://h\"\ntopic = \"facility/#\"\ndecoder = \"sparkplug_b\"", "mqtt.subscription[0].topic: "),
            ("url = \"mqtt://h\"\ntopic = \"a\"\ndecoder = \"json\"\nrebirth = false", "agent.toml:5: mqtt.subscription[0].rebirth: rebirth is not used by decoder = \"json\""),
            ("url = \"mqtt://h\"\ntopic = \"a\"\ndecoder = \"number\"\npoint = \"p\"\nrebirth = true", "mqtt.subscription[0].rebirth: "),
            ("url = \"mqtt://h\"\ntopic = \"spBv1.0/#\"\ndecoder = \"sparkplug_b\"\nrebirth = \"no\"", "agent.toml:"),
            ("url = \"mqtt://h\"\ntopic = \"a\"\ndecoder = \"json\"\nqos = 2", "agent.toml:"),
            ("url = \"mqtt://h\"\ntopic = \"a\"\ndecoder = \"protobuf\"", "agent.toml:4"),
        ];
        for (body, want) in cases {
            let got = problems(body);
            assert_eq!(got.len(), 1, "{body}: {got:?}");
            assert!(
                got[0].contains(want),
                "{body}: {got:?} should contain {want:?}"
            );
        }
    }

    #[test]
    fn overlapping_filters_on_one_broker() {
        let text = r#"
[[mqtt.subscription]]
url = "mqtt://h:1883"
topic = "facility/#"
decoder = "json"

[[mqtt.subscription]]
url = "mqtt://h"
topic = "facility/door/+"
decoder = "number"
point = "p"

[[mqtt.subscription]]
url = "mqtt://other"
topic = "facility/#"
decoder = "json"

[[mqtt.subscription]]
url = "mqtt://h"
topic = "spBv1.0/#"
decoder = "sparkplug_b"
"#;
        let errors = load(text).expect_err("overlap").0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].key, "mqtt.subscription[1].topic");
        assert!(errors[0].message.contains("overlaps"), "{}", errors[0]);
    }

    fn agent_config(url: &str) -> Result<crate::config::AgentConfig, ConfigErrors> {
        let text = format!(
            "[node]\nid = \"gw\"\nsite = \"ministry/guangdong/guangzhou/baiyun/prison-3\"\n\n[uplink]\nurl = \"{url}\"\n\n[store]\npath = \"agent.db\"\n"
        );
        vigil_config::parse(Path::new("agent.toml"), &text)
    }

    /// `[uplink] url` is checked with the one broker URL parser, and its error names the
    /// file, the line and the key.
    #[test]
    fn the_uplink_url_is_a_broker_url() {
        for good in ["mqtt://127.0.0.1:1883", "mqtts://[::1]:8883", "mqtts://hub"] {
            assert!(agent_config(good).is_ok(), "{good}");
        }
        for (bad, says) in [
            ("mqtt://hub/vigil", "without a path"),
            ("mqtts://[::1", "closing ']'"),
            ("mqtt://hub:0", "from 1 to 65535"),
            ("mqtt://agent:pw@hub", "no user or password"),
            ("http://hub", "must start with mqtt:// or mqtts://"),
        ] {
            let errors = agent_config(bad).expect_err(bad);
            let text = errors.to_string();
            assert!(text.starts_with("agent.toml:6: uplink.url: "), "{text}");
            assert!(text.contains(says), "{text}");
            assert!(!text.contains(":pw@"), "{text}");
        }
    }
}
