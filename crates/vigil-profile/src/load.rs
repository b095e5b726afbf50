//! Loading and validating profiles. Every error names the file, the line and the key, and
//! says what would be right; validation reports every problem of a file, not just the first.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::locate::LineIndex;
use crate::schema::{DataType, Point, Profile};

/// The longest string point, in bytes (a single read of 125 registers holds 250).
pub const MAX_STRING_LEN: u16 = 250;

/// One problem with one profile file: the same located error as a config's (file, line,
/// key, message).
pub use vigil_config::ConfigError as ProfileError;

/// Reads and validates one profile file.
pub fn load_file(path: &Path) -> Result<Profile, Vec<ProfileError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ProfileError {
            file: path.to_owned(),
            line: None,
            key: String::new(),
            message: format!("cannot read: {e}"),
        }]
    })?;
    parse_profile(path, &text)
}

/// Parses and validates profile text; `file` names it in errors and its stem must equal the
/// profile's `name`.
pub fn parse_profile(file: &Path, text: &str) -> Result<Profile, Vec<ProfileError>> {
    let index = LineIndex::new(text);
    let err = |key: &str, message: String| ProfileError {
        file: file.to_owned(),
        line: index.line(key),
        key: key.to_owned(),
        message,
    };
    let de = serde_yaml::Deserializer::from_str(text);
    let profile: Profile = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." { String::new() } else { key };
        let inner = e.into_inner();
        let line = inner
            .location()
            .map(|l| l.line())
            .or_else(|| index.line(&key));
        // serde_yaml appends "at line N column M"; the line is reported separately.
        let message = inner.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message);
        // …and prefixes the path, which is reported separately too.
        let message = match message.split_once(": ") {
            Some((head, rest)) if !head.is_empty() && key.starts_with(head) => rest,
            _ => message,
        }
        .to_owned();
        vec![ProfileError {
            file: file.to_owned(),
            line,
            key,
            message,
        }]
    })?;
    let problems = validate(&profile, file.file_stem().and_then(|s| s.to_str()));
    if problems.is_empty() {
        Ok(profile)
    } else {
        Err(problems.into_iter().map(|(k, m)| err(&k, m)).collect())
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The semantic checks after the schema: `(key path, message)` for each problem.
fn validate(profile: &Profile, stem: Option<&str>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if !valid_name(&profile.name) {
        out.push((
            "name".into(),
            format!(
                "{:?} is not a valid profile name: use 1-64 lowercase letters, digits, '-' and '_'",
                profile.name
            ),
        ));
    }
    if let Some(stem) = stem {
        if stem != profile.name {
            out.push((
                "name".into(),
                format!("the profile is named {:?} but its file is {stem:?}.yaml: rename one so they match", profile.name),
            ));
        }
    }
    if profile.points.is_empty() {
        out.push(("points".into(), "a profile needs at least one point".into()));
    }
    let mut seen = HashSet::new();
    for (i, point) in profile.points.iter().enumerate() {
        let at = |k: &str| {
            if k.is_empty() {
                format!("points[{i}]")
            } else {
                format!("points[{i}].{k}")
            }
        };
        if !valid_name(&point.name) {
            out.push((at("name"), format!("{:?} is not a valid point name: use 1-64 lowercase letters, digits, '-' and '_'", point.name)));
        }
        if !seen.insert(point.name.as_str()) {
            out.push((
                at("name"),
                format!("point {:?} is defined twice", point.name),
            ));
        }
        validate_point(point, &at, &mut out);
    }
    out
}

fn validate_point(point: &Point, at: &dyn Fn(&str) -> String, out: &mut Vec<(String, String)>) {
    let table = point.table.as_str();
    if point.table.is_bits() {
        if point.data_type != DataType::Bool {
            out.push((
                at("type"),
                format!(
                    "a {table} holds single bits: its type must be bool, not {}",
                    point.data_type.as_str()
                ),
            ));
        }
        if point.bit.is_some() {
            out.push((
                at("bit"),
                format!("'bit' selects a bit of a register; a {table} is already a bit: remove it"),
            ));
        }
    } else if point.data_type == DataType::Bool {
        match point.bit {
            None => out.push((
                at("bit"),
                format!(
                    "a bool in the {table} table needs 'bit' (0-15): which bit of the register"
                ),
            )),
            Some(b) if b > 15 => out.push((
                at("bit"),
                format!("bit {b} is out of range: a register has bits 0-15"),
            )),
            Some(_) => {}
        }
    } else if point.bit.is_some() {
        out.push((at("bit"), "'bit' applies only to bool points".into()));
    }
    match (point.data_type, point.length) {
        (DataType::String, None) => out.push((
            at("length"),
            "a string point needs 'length' in bytes".into(),
        )),
        (DataType::String, Some(n)) if n == 0 || n > MAX_STRING_LEN => out.push((
            at("length"),
            format!("length {n} is out of range 1-{MAX_STRING_LEN}"),
        )),
        (DataType::String, Some(_)) => {}
        (_, Some(_)) => out.push((
            at("length"),
            "'length' applies only to string points".into(),
        )),
        (_, None) => {}
    }
    let last = u32::from(point.address) + u32::from(point.width().max(1)) - 1;
    if last > u32::from(u16::MAX) {
        out.push((
            at("address"),
            format!(
                "the point runs past the last address 65535 (it needs {} registers)",
                point.width()
            ),
        ));
    }
    if !point.scale.is_finite() || point.scale == 0.0 {
        out.push((
            at("scale"),
            format!("scale {} must be a finite, non-zero number", point.scale),
        ));
    }
    if !point.offset.is_finite() {
        out.push((at("offset"), "offset must be a finite number".into()));
    }
    let numeric = point.data_type.is_numeric();
    if point.alarm.is_some() && point.data_type != DataType::Bool {
        out.push((
            at("alarm"),
            "'alarm' is a digital-state rule for bool points; use 'limits' for numbers".into(),
        ));
    }
    for (rule, present) in [
        ("limits", point.limits.is_some()),
        ("rate", point.rate.is_some()),
        ("flatline", point.flatline.is_some()),
    ] {
        if present && !numeric {
            out.push((
                at(rule),
                format!(
                    "'{rule}' applies only to numeric points, not {}",
                    point.data_type.as_str()
                ),
            ));
        }
    }
    if let Some(limits) = &point.limits {
        let set: Vec<(&str, f64)> = [
            ("ll", limits.ll),
            ("l", limits.l),
            ("h", limits.h),
            ("hh", limits.hh),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        if set.is_empty() {
            out.push((at("limits"), "give at least one of hh, h, l, ll".into()));
        }
        for (k, v) in &set {
            if !v.is_finite() {
                out.push((at(&format!("limits.{k}")), "must be a finite number".into()));
            }
        }
        for pair in set.windows(2) {
            if pair[0].1 >= pair[1].1 {
                out.push((
                    at(&format!("limits.{}", pair[1].0)),
                    format!(
                        "limits must increase ll < l < h < hh, but {} = {} is not above {} = {}",
                        pair[1].0, pair[1].1, pair[0].0, pair[0].1
                    ),
                ));
            }
        }
        if !(limits.deadband.is_finite() && limits.deadband >= 0.0) {
            out.push((
                at("limits.deadband"),
                "deadband must be a number ≥ 0".into(),
            ));
        }
    }
    if let Some(rate) = &point.rate {
        if !(rate.max_per_s.is_finite() && rate.max_per_s > 0.0) {
            out.push((at("rate.max_per_s"), "must be a number > 0".into()));
        }
    }
    if let Some(f) = &point.flatline {
        if f.after.is_zero() {
            out.push((at("flatline.after"), "must be longer than 0s".into()));
        }
        if !(f.tolerance.is_finite() && f.tolerance >= 0.0) {
            out.push((at("flatline.tolerance"), "must be a number ≥ 0".into()));
        }
    }
    if let Some(s) = &point.stale {
        if s.after.is_zero() {
            out.push((at("stale.after"), "must be longer than 0s".into()));
        }
    }
}

/// Loads every `*.yaml` / `*.yml` profile in `dir`, sorted by name. Two files declaring the
/// same profile name is an error.
pub fn load_dir(dir: &Path) -> Result<Vec<Profile>, Vec<ProfileError>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![ProfileError {
            file: dir.to_owned(),
            line: None,
            key: String::new(),
            message: format!("cannot read profile directory: {e}"),
        }]
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    let mut profiles = Vec::new();
    let mut errors = Vec::new();
    let mut names: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        match load_file(&file) {
            Ok(p) => {
                if let Some(other) = names.insert(p.name.clone(), file.clone()) {
                    errors.push(ProfileError {
                        file: file.clone(),
                        line: None,
                        key: "name".into(),
                        message: format!(
                            "profile {:?} is also defined in {}",
                            p.name,
                            other.display()
                        ),
                    });
                }
                profiles.push(p);
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        profiles.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(profiles)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"name: door
manufacturer: Example
model: D-1
points:
  - name: forced
    table: discrete_input
    address: 0
    type: bool
    alarm: { state: true, severity: critical, message: "Door forced", latching: true }
  - name: temperature
    table: input
    address: 10
    type: f32
    word_order: little
    unit: degC
    limits: { hh: 60, h: 50, deadband: 1, delay: 5s }
"#;

    fn parse(text: &str) -> Result<Profile, Vec<ProfileError>> {
        parse_profile(Path::new("profiles/door.yaml"), text)
    }

    #[test]
    fn a_good_profile_parses() {
        let p = parse(GOOD).expect("valid");
        assert_eq!(p.points.len(), 2);
        assert_eq!(p.points[1].width(), 2);
        assert_eq!(
            p.points[1].limits.as_ref().and_then(|l| l.delay),
            Some(std::time::Duration::from_secs(5))
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = GOOD.replace("    address: 10\n", "    adress: 10\n");
        let errs = parse(&text).expect_err("typo");
        let e = &errs[0];
        assert_eq!(e.line, Some(12), "{e}");
        assert_eq!(e.key, "points[1].adress", "{e}");
        assert!(
            e.to_string()
                .starts_with("profiles/door.yaml:12: points[1].adress: unknown field `adress`"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_value_is_located() {
        let text = GOOD.replace("type: f32", "type: float");
        let e = &parse(&text).expect_err("bad type")[0];
        assert_eq!(e.key, "points[1].type");
        assert_eq!(e.line, Some(13));
        assert!(e.message.contains("unknown variant `float`"), "{e}");
    }

    #[test]
    fn semantic_errors_are_all_reported_with_lines() {
        let text = GOOD
            .replace("name: door", "name: gate")
            .replace("hh: 60, h: 50", "hh: 40, h: 50")
            .replace(
                "    table: discrete_input\n    address: 0\n    type: bool",
                "    table: discrete_input\n    address: 0\n    type: u16",
            );
        let errs = parse(&text).expect_err("invalid");
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        assert!(keys.contains(&"name"), "{errs:?}");
        assert!(keys.contains(&"points[0].type"), "{errs:?}");
        assert!(keys.contains(&"points[0].alarm"), "{errs:?}");
        assert!(keys.contains(&"points[1].limits.hh"), "{errs:?}");
        let hh = errs
            .iter()
            .find(|e| e.key == "points[1].limits.hh")
            .expect("present");
        assert_eq!(hh.line, Some(16));
    }

    #[test]
    fn register_bools_need_a_bit_and_strings_a_length() {
        let text = "name: door\nmanufacturer: x\nmodel: y\npoints:\n  - name: s\n    table: holding\n    address: 0\n    type: bool\n  - name: t\n    table: holding\n    address: 1\n    type: string\n";
        let errs = parse(text).expect_err("invalid");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].key, "points[0].bit");
        assert_eq!(errs[1].key, "points[1].length");
        assert_eq!(errs[1].line, Some(9));
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = &parse("name: door\npoints: [\n").expect_err("syntax")[0];
        assert!(e.line.is_some(), "{e}");
    }

    #[test]
    fn points_past_the_address_space() {
        let text = GOOD.replace("address: 10", "address: 65535");
        let errs = parse(&text).expect_err("overflow");
        assert_eq!(errs[0].key, "points[1].address");
    }
}
