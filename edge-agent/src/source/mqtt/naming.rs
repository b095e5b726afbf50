//! Names of the points MQTT messages become: the device name (from a template over the
//! topic's wildcards, or the topic itself) and point names made from the outside world's
//! names (JSON keys, Sparkplug metric names) by the point-name rules.
//!
//! The rules: a device name is 1-64 ASCII letters, digits, `-`, `_` and `.` (as for Modbus
//! devices and cameras); a point name is 1-64 lowercase ASCII letters, digits, `-` and `_`
//! (as in device profiles).

use std::fmt;

/// The longest device or point name.
pub const MAX_NAME: usize = 64;

/// Whether `s` is a valid point name: 1-64 lowercase letters, digits, `-` and `_`.
pub fn valid_point_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn device_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// `raw` made into device-name characters: `/` becomes `.`, anything else outside the rules
/// becomes `_`. May be empty or too long; the caller checks.
pub fn sanitise_device(raw: &str) -> String {
    raw.chars()
        .map(|c| match c {
            '/' => '.',
            c if device_char(c) => c,
            _ => '_',
        })
        .collect()
}

/// A point name made from an outside name: lowercase, camelCase and every run of other
/// characters (spaces, `/`, `.`, punctuation) become one `_`, cut to 64 characters.
/// `Inputs/Temperature` → `inputs_temperature`, `supplyVoltage` → `supply_voltage`,
/// `Temp (°C)` → `temp_c`. `None` when nothing usable is left (`温度`).
pub fn point_name(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len().min(MAX_NAME));
    let mut gap = false;
    let mut after_lower_or_digit = false;
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            if c.is_ascii_uppercase() && after_lower_or_digit {
                gap = true;
            }
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(c.to_ascii_lowercase());
            after_lower_or_digit = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            gap = true;
            after_lower_or_digit = false;
        }
    }
    out.truncate(MAX_NAME);
    while out.ends_with('_') {
        out.pop();
    }
    (!out.is_empty()).then_some(out)
}

/// How the device name of a message's points is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// The n-th wildcard's capture, 0-based.
    Wildcard(usize),
    /// The whole topic.
    Topic,
}

/// A device template that cannot work with its topic filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device template {template:?}: {reason}")]
pub struct TemplateError {
    /// The template.
    pub template: String,
    /// What is wrong.
    pub reason: String,
}

impl DeviceTemplate {
    /// The default: the whole topic, `/` written `.` (`facility/env/3/telemetry` →
    /// `facility.env.3.telemetry`).
    pub fn whole_topic() -> Self {
        DeviceTemplate {
            parts: vec![Part::Topic],
        }
    }

    /// Parses a template such as `env-{1}`: `{n}` stands for what the n-th wildcard of the
    /// topic filter matched (1-based, of `wildcards`); the rest must be device-name
    /// characters.
    pub fn parse(template: &str, wildcards: usize) -> Result<Self, TemplateError> {
        let err = |reason: String| TemplateError {
            template: template.to_owned(),
            reason,
        };
        if template.is_empty() {
            return Err(err("it is empty".into()));
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while let Some(c) = rest.chars().next() {
            if c == '{' {
                let close = rest
                    .find('}')
                    .ok_or_else(|| err("a '{' has no matching '}'".into()))?;
                let inner = &rest[1..close];
                let n: usize = inner
                    .parse()
                    .map_err(|_| err(format!("{{{inner}}} is not a wildcard number like {{1}}")))?;
                if n == 0 || n > wildcards {
                    return Err(err(format!(
                        "{{{n}}} names no wildcard: the topic filter has {wildcards} ('+' or '#'), numbered from 1"
                    )));
                }
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::Wildcard(n - 1));
                rest = &rest[close + 1..];
            } else if device_char(c) {
                text.push(c);
                rest = &rest[c.len_utf8()..];
            } else {
                return Err(err(format!(
                    "{c:?} is not allowed: use letters, digits, '-', '_', '.' and {{n}}"
                )));
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(DeviceTemplate { parts })
    }

    /// The device name for a message on `topic` whose wildcards captured `captures`; `None`
    /// when the result breaks the device-name rules (empty, over 64 characters).
    pub fn render(&self, topic: &str, captures: &[&str]) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Wildcard(i) => out.push_str(&sanitise_device(captures.get(*i)?)),
                Part::Topic => out.push_str(&sanitise_device(topic)),
            }
        }
        (!out.is_empty() && out.len() <= MAX_NAME).then_some(out)
    }
}

impl fmt::Display for DeviceTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(t) => f.write_str(t)?,
                Part::Wildcard(i) => write!(f, "{{{}}}", i + 1)?,
                Part::Topic => f.write_str("{topic}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn point_names_from_outside_names() {
        let cases = [
            ("temperature", Some("temperature")),
            ("Inputs/Temperature", Some("inputs_temperature")),
            ("supplyVoltage", Some("supply_voltage")),
            ("zone1Alarm", Some("zone1_alarm")),
            ("Temp (°C)", Some("temp_c")),
            ("Node Control/Rebirth", Some("node_control_rebirth")),
            ("a..b", Some("a_b")),
            ("door-3", Some("door-3")),
            ("  x  ", Some("x")),
            ("温度", None),
            ("", None),
            ("///", None),
        ];
        for (raw, want) in cases {
            assert_eq!(point_name(raw).as_deref(), want, "{raw:?}");
        }
        assert_eq!(point_name(&"A".repeat(100)).map(|s| s.len()), Some(64));
    }

    #[test]
    fn templates() {
        let t = DeviceTemplate::parse("env-{1}", 1).expect("valid");
        assert_eq!(
            t.render("facility/env/3/telemetry", &["3"]).as_deref(),
            Some("env-3")
        );
        assert_eq!(t.to_string(), "env-{1}");
        let t = DeviceTemplate::parse("{2}.{1}", 2).expect("valid");
        assert_eq!(t.render("", &["a", "b c"]).as_deref(), Some("b_c.a"));
        let t = DeviceTemplate::parse("x{1}", 1).expect("valid");
        assert_eq!(t.render("", &["p/q"]).as_deref(), Some("xp.q"));
        assert_eq!(t.render("", &[]), None);
        let fixed = DeviceTemplate::parse("door-7", 0).expect("valid");
        assert_eq!(fixed.render("any/topic", &[]).as_deref(), Some("door-7"));
        let whole = DeviceTemplate::whole_topic();
        assert_eq!(
            whole.render("facility/env/3/telemetry", &["3"]).as_deref(),
            Some("facility.env.3.telemetry")
        );
        assert_eq!(whole.render(&"a".repeat(65), &[]), None);
        assert_eq!(
            DeviceTemplate::parse("{1}", 1)
                .expect("valid")
                .render("a/", &[""]),
            None
        );
        for (bad, wildcards) in [
            ("", 1),
            ("env-{1", 1),
            ("env-{2}", 1),
            ("{0}", 1),
            ("{x}", 1),
            ("a b", 0),
            ("a/b", 0),
            ("a}", 0),
        ] {
            assert!(DeviceTemplate::parse(bad, wildcards).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn sanitised_names_follow_the_rules(raw in "\\PC{0,80}") {
            if let Some(p) = point_name(&raw) {
                prop_assert!(valid_point_name(&p), "{:?} → {:?}", raw, p);
            }
            let d = sanitise_device(&raw);
            prop_assert!(d.chars().all(device_char));
        }
    }
}
