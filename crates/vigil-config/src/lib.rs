//! Loading Vigil's TOML configs (`agent.toml`, `hub.toml`, `sim.toml`).
//!
//! Every config is a typed serde struct with unknown keys rejected; this crate reads the
//! file, deserialises it, runs the struct's own semantic checks ([`Validate`]) and turns
//! every problem into a [`ConfigError`] that names the file, the line and the key — the
//! message an installer needs to fix a gateway's config at 3 a.m.
//! (docs/ARCHITECTURE.md#configuration-files: config errors
//! exit 2 with a message naming the file, line and key.)

mod broker_url;

pub use broker_url::{
    redact as redact_url, BrokerLogin, BrokerUrl, BrokerUrlError,
    DEFAULT_PORT as DEFAULT_MQTT_PORT, DEFAULT_TLS_PORT as DEFAULT_MQTTS_PORT,
};

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// The exit status of a command whose config is invalid.
pub const EXIT_CONFIG: u8 = 2;

/// One problem in one config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line, when it can be told.
    pub line: Option<usize>,
    /// The key path, e.g. `modbus.device[2].address`; empty for the whole file.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All the problems found in one config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A problem found by a config's semantic checks: the key path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// The semantic checks of a config, after the schema: pure, no I/O (files the config names
/// are checked by the command that uses them).
pub trait Validate {
    /// Every problem, each with the key path it is about.
    fn validate(&self) -> Vec<Problem>;
}

/// Reads, deserialises and validates a config file.
pub fn load<T: DeserializeOwned + Validate>(path: &Path) -> Result<T, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_owned(),
            line: None,
            key: String::new(),
            message: format!("cannot read config: {e}"),
        }])
    })?;
    parse(path, &text)
}

/// Deserialises and validates config text; `file` names it in errors.
pub fn parse<T: DeserializeOwned + Validate>(file: &Path, text: &str) -> Result<T, ConfigErrors> {
    let at = |line: Option<usize>, key: String, message: String| ConfigError {
        file: file.to_owned(),
        line,
        key,
        message,
    };
    let de = toml::de::Deserializer::parse(text).map_err(|e| {
        ConfigErrors(vec![at(
            e.span().map(|s| line_of_offset(text, s.start)),
            String::new(),
            e.message().trim().to_owned(),
        )])
    })?;
    let value: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." { String::new() } else { key };
        let inner = e.into_inner();
        let line = inner
            .span()
            .map(|s| line_of_offset(text, s.start))
            .or_else(|| locate(text, &key));
        ConfigErrors(vec![at(line, key, inner.message().trim().to_owned())])
    })?;
    let problems = value.validate();
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(ConfigErrors(
            problems
                .into_iter()
                .map(|p| at(locate(text, &p.key), p.key, p.message))
                .collect(),
        ))
    }
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line of a key path such as `modbus.device[2].address` in TOML text, or of its nearest
/// ancestor that can be found.
pub fn locate(text: &str, path: &str) -> Option<usize> {
    let root = DeTable::parse(text).ok()?;
    let mut best: Option<usize> = None;
    let mut table: &DeTable<'_> = root.get_ref();
    let mut segments = split_path(path).into_iter().peekable();
    while let Some(seg) = segments.next() {
        let Seg::Key(name) = seg else { return best };
        let Some((key, value)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == name) else {
            return best;
        };
        let value: &Spanned<DeValue<'_>> = value;
        best = Some(line_of_offset(text, key.span().start));
        let mut value = value;
        while let Some(Seg::Index(i)) = segments.peek() {
            let DeValue::Array(items) = value.get_ref() else {
                return best;
            };
            let Some(item) = items.get(*i) else {
                return best;
            };
            best = Some(line_of_offset(text, item.span().start));
            value = item;
            segments.next();
        }
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            _ => return best,
        }
    }
    best
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            out.push(Seg::Key(name));
        }
        while let Some((idx, tail)) = rest.split_once(']') {
            if let Ok(i) = idx.parse() {
                out.push(Seg::Index(i));
            }
            rest = tail.strip_prefix('[').unwrap_or(tail);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::time::Duration;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Conf {
        node: Node,
        #[serde(default)]
        device: Vec<Device>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Node {
        id: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Device {
        id: String,
        #[serde(with = "humantime_serde")]
        poll: Duration,
    }

    impl Validate for Conf {
        fn validate(&self) -> Vec<Problem> {
            let mut out = Vec::new();
            for (i, d) in self.device.iter().enumerate() {
                if d.poll.is_zero() {
                    out.push(Problem::new(
                        format!("device[{i}].poll"),
                        "must be longer than 0s",
                    ));
                }
            }
            if self.node.id.is_empty() {
                out.push(Problem::new("node.id", "must not be empty"));
            }
            out
        }
    }

    const GOOD: &str = "[node]\nid = \"gw\"\n\n[[device]]\nid = \"a\"\npoll = \"500ms\"\n\n[[device]]\nid = \"b\"\npoll = \"5m\"\n";

    fn parse_str(text: &str) -> Result<Conf, ConfigErrors> {
        parse(Path::new("agent.toml"), text)
    }

    #[test]
    fn good_config_loads() {
        let c = parse_str(GOOD).expect("valid");
        assert_eq!(c.device[1].poll, Duration::from_secs(300));
        assert_eq!(c.device[0].id, "a");
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let e = parse_str(&GOOD.replace("id = \"b\"", "id = \"b\"\nadress = 1")).expect_err("typo");
        let e = &e.0[0];
        assert_eq!(e.line, Some(10), "{e}");
        assert_eq!(e.key, "device[1].adress", "{e}");
        assert!(e.message.contains("unknown field `adress`"), "{e}");
        assert!(
            e.to_string()
                .starts_with("agent.toml:10: device[1].adress: unknown field"),
            "{e}"
        );
    }

    #[test]
    fn bad_duration_is_named() {
        let e = parse_str(&GOOD.replace("\"5m\"", "\"5 parsecs\"")).expect_err("bad");
        let e = &e.0[0];
        assert_eq!(e.key, "device[1].poll");
        assert_eq!(e.line, Some(10));
    }

    #[test]
    fn semantic_problems_are_located() {
        let e = parse_str(&GOOD.replace("\"500ms\"", "\"0s\"")).expect_err("zero");
        assert_eq!(e.0[0].key, "device[0].poll");
        assert_eq!(e.0[0].line, Some(6));
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = parse_str("[node]\nid = \"gw\n").expect_err("syntax");
        assert_eq!(e.0[0].line, Some(2), "{}", e);
    }

    #[test]
    fn missing_file_is_an_error() {
        let e = load::<Conf>(Path::new("/nonexistent/agent.toml")).expect_err("missing");
        assert!(e.to_string().contains("cannot read config"), "{e}");
    }
}
