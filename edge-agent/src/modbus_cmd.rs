//! `vigil-agent modbus read` and `modbus scan`: the installer's tools to find devices on a
//! network or bus and read them through a profile, with errors that say what to do.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use vigil_core::Value;
use vigil_profile::Table;

use crate::config::Parity;
use crate::source::modbus::client::{ReadError, SerialSettings};
use crate::source::modbus::link::{Endpoint, Link};
use crate::source::modbus::plan;
use crate::source::modbus::scan::{scan, ScanParams};

/// Where the installer's command connects.
#[derive(Debug, Clone)]
pub struct Target {
    pub endpoint: Endpoint,
    pub timeout: Duration,
}

impl Target {
    /// A TCP target `host:port`.
    pub fn tcp(addr: &str, timeout: Duration) -> Self {
        Target {
            endpoint: Endpoint::Tcp(addr.to_owned()),
            timeout,
        }
    }

    /// A serial RTU target.
    pub fn serial(
        port: PathBuf,
        baud: u32,
        parity: Parity,
        stop_bits: u8,
        timeout: Duration,
    ) -> Self {
        Target {
            endpoint: Endpoint::Rtu {
                port,
                settings: SerialSettings {
                    baud,
                    parity,
                    stop_bits,
                },
            },
            timeout,
        }
    }
}

/// What went wrong, in the installer's words.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Profile(String),
    #[error("no answer from {endpoint} unit {unit} within {timeout}: check wiring, unit id, or raise --timeout")]
    NoAnswer {
        endpoint: String,
        unit: u8,
        timeout: String,
    },
    #[error("the gateway at {endpoint} answered that unit {unit} does not respond ({reason}): check the device behind the gateway, its wiring and its unit id")]
    Gateway {
        endpoint: String,
        unit: u8,
        reason: String,
    },
    #[error("cannot reach {endpoint}: {reason}: check the address and that the device is powered and on the network")]
    Unreachable { endpoint: String, reason: String },
    #[error(
        "{failed} of {total} reads failed (values above are the ones read); first error: {first}"
    )]
    Partial {
        failed: usize,
        total: usize,
        first: String,
    },
    #[error("bad --units {0:?}: use a range like 1-247 or a list like 1,2,10-20 (1-247)")]
    Units(String),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

fn fmt_duration(d: Duration) -> String {
    humantime_serde::re::humantime::format_duration(d).to_string()
}

/// One scan of one device through `profile_file`; one line per point (`--json`: one JSON
/// object per line with `point`, `value`, `unit`).
pub async fn read(
    target: &Target,
    unit: u8,
    profile_file: &std::path::Path,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let profile = vigil_profile::load_file(profile_file).map_err(|errs| {
        CommandError::Profile(
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let requests = plan::plan(&profile.points, 16);
    let mut link = Link::new(target.endpoint.clone());
    let params = ScanParams {
        unit,
        timeout: target.timeout,
        retries: 1,
    };
    let outcome = scan(&mut link, "device", &profile, &requests, params, false).await;
    if !outcome.answered {
        return Err(match outcome.errors.first() {
            Some(ReadError::Io(reason)) => CommandError::Unreachable {
                endpoint: target.endpoint.to_string(),
                reason: reason.clone(),
            },
            _ => CommandError::NoAnswer {
                endpoint: target.endpoint.to_string(),
                unit,
                timeout: fmt_duration(target.timeout),
            },
        });
    }
    let by_name: std::collections::HashMap<&str, &Value> = outcome
        .readings
        .iter()
        .map(|r| (r.point.point(), &r.value))
        .collect();
    let width = profile
        .points
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    if !json {
        writeln!(out, "{:width$}  {:>14}  UNIT", "POINT", "VALUE")?;
    }
    for point in &profile.points {
        let Some(value) = by_name.get(point.name.as_str()) else {
            continue;
        };
        if json {
            let line =
                serde_json::json!({ "point": point.name, "value": value, "unit": point.unit });
            writeln!(out, "{line}")?;
        } else {
            let shown = match value {
                Value::Float(f) => format!("{f:.3}")
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_owned(),
                other => other.to_string(),
            };
            writeln!(
                out,
                "{:width$}  {:>14}  {}",
                point.name,
                shown,
                point.unit.as_deref().unwrap_or("")
            )?;
        }
    }
    if outcome.failed_reads > 0 {
        let first = outcome
            .errors
            .first()
            .map_or_else(String::new, |e| explain(e, &requests));
        return Err(CommandError::Partial {
            failed: outcome.failed_reads,
            total: requests.len(),
            first,
        });
    }
    Ok(())
}

fn explain(e: &ReadError, requests: &[plan::ReadRequest]) -> String {
    match e {
        ReadError::Exception(code) if code.to_lowercase().contains("address") => {
            let spans: Vec<String> = requests
                .iter()
                .map(|r| format!("{} {}-{}", r.table.as_str(), r.start, r.start + r.count - 1))
                .collect();
            format!("{e}: the device does not have one of these address ranges: {}; check the profile's addresses (0-based protocol addresses: register 40001 is holding 0, 30001 is input 0)", spans.join(", "))
        }
        other => other.to_string(),
    }
}

/// Parses `1-247` or `1,2,10-20` into unit ids.
pub fn parse_units(spec: &str) -> Result<Vec<u8>, CommandError> {
    let bad = || CommandError::Units(spec.to_owned());
    let mut out = Vec::new();
    for part in spec.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: u8 = a.trim().parse().map_err(|_| bad())?;
        let b: u8 = b.trim().parse().map_err(|_| bad())?;
        if a == 0 || b > 247 || a > b {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Probes each unit id with a one-register read: an answer, even an exception, means a
/// device is there. Shows a progress bar on stderr when `progress` is set.
pub async fn find_units(
    target: &Target,
    units: &[u8],
    progress: bool,
    out: &mut dyn Write,
) -> Result<Vec<u8>, CommandError> {
    let bar = if progress {
        ProgressBar::new(units.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} units {pos}/{len} [{bar:30}] {msg} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut link = Link::new(target.endpoint.clone());
    let mut found = Vec::new();
    let mut unreachable = None;
    for &unit in units {
        bar.set_message(format!("probing unit {unit}, found {}", found.len()));
        match link.read(unit, Table::Holding, 0, 1, target.timeout).await {
            Ok(_) => {
                found.push(unit);
                bar.println(format!("unit {unit}: answers"));
            }
            Err(ReadError::Exception(code)) => {
                found.push(unit);
                bar.println(format!("unit {unit}: answers (exception: {code})"));
            }
            Err(ReadError::Io(reason))
                if !link.is_open() && unreachable.is_none() && found.is_empty() =>
            {
                unreachable = Some(reason);
            }
            Err(_) => {}
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if found.is_empty() {
        if let Some(reason) = unreachable {
            return Err(CommandError::Unreachable {
                endpoint: target.endpoint.to_string(),
                reason,
            });
        }
    }
    let list: Vec<String> = found.iter().map(ToString::to_string).collect();
    writeln!(
        out,
        "found {} unit(s) at {}: {}",
        found.len(),
        target.endpoint,
        if list.is_empty() {
            "none".to_owned()
        } else {
            list.join(", ")
        }
    )?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_specs() {
        assert_eq!(parse_units("1-3").expect("ok"), vec![1, 2, 3]);
        assert_eq!(parse_units("5,1-2,2").expect("ok"), vec![1, 2, 5]);
        assert_eq!(parse_units("1-247").expect("ok").len(), 247);
        for bad in ["0-3", "1-248", "3-1", "x", ""] {
            assert!(parse_units(bad).is_err(), "{bad}");
        }
    }
}
