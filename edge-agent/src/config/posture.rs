//! `[[posture]]`: the thresholds a `posture` directive arms for a while
//! (docs/ARCHITECTURE.md#directives).
//!
//! ```toml
//! [[posture]]
//! points = ["fence-north/supply_voltage", "env-1/*"]   # exact ids, or every point of a device
//! limits = { h = 26, hh = 28, delay = "1s" }            # tighter limits, shorter delays
//! ```
//!
//! While a posture directive from the hub is in force (until its `until`), each matched point
//! also runs these limits; their alarms have their own kinds (`posture_hh`, `posture_h`,
//! `posture_l`, `posture_ll`) so they never mix with the point's normal `limit_*` alarms. A
//! reading between the normal and the posture threshold therefore alarms only inside the
//! window; when the window ends, every posture alarm clears. Without `[[posture]]` entries an
//! agent acknowledges a posture directive as not applicable.

use serde::Deserialize;
use vigil_config::Problem;
use vigil_profile::Limits;

use super::rule::PointPattern;

/// One `[[posture]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostureEntry {
    /// The points: exact ids (`fence-north/supply_voltage`) or every point of a device
    /// (`env-1/*`).
    pub points: Vec<String>,
    /// The limits armed during a raised posture (same keys as a profile's `limits`).
    pub limits: Limits,
}

impl PostureEntry {
    /// The entry's patterns that parse.
    pub fn patterns(&self) -> Vec<PointPattern> {
        self.points
            .iter()
            .filter_map(|p| PointPattern::parse(p).ok())
            .collect()
    }
}

/// The checks of every `[[posture]]` entry (pure), each naming its key.
pub fn validate_posture(entries: &[PostureEntry]) -> Vec<Problem> {
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = |k: &str| format!("posture[{i}].{k}");
        if entry.points.is_empty() {
            out.push(Problem::new(
                at("points"),
                "list the points the raised posture applies to, e.g. points = [\"env-1/*\"]",
            ));
        }
        for p in &entry.points {
            if let Err(e) = PointPattern::parse(p) {
                out.push(Problem::new(at("points"), e.to_string()));
            }
        }
        let l = &entry.limits;
        let set: Vec<(&str, f64)> = [("ll", l.ll), ("l", l.l), ("h", l.h), ("hh", l.hh)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        if set.is_empty() {
            out.push(Problem::new(
                at("limits"),
                "give at least one of hh, h, l, ll",
            ));
        }
        for (k, v) in set {
            if !v.is_finite() {
                out.push(Problem::new(
                    at(&format!("limits.{k}")),
                    "must be a finite number",
                ));
            }
        }
        if !l.deadband.is_finite() || l.deadband < 0.0 {
            out.push(Problem::new(at("limits.deadband"), "must be a number ≥ 0"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_the_entry_and_key() {
        let entries: Vec<PostureEntry> = vec![
            serde_json::from_str(r#"{"points": ["env-1/*"], "limits": {"h": 26.0}}"#)
                .expect("valid"),
            serde_json::from_str(r#"{"points": ["nonsense"], "limits": {"deadband": 1.0}}"#)
                .expect("valid"),
        ];
        let problems = validate_posture(&entries);
        let keys: Vec<String> = problems.iter().map(|p| p.key.clone()).collect();
        assert_eq!(
            keys,
            ["posture[1].points", "posture[1].limits"],
            "{problems:?}"
        );
        let unknown = r#"{"points": [], "limits": {}, "extra": 1}"#;
        assert!(serde_json::from_str::<PostureEntry>(unknown).is_err());
    }
}
