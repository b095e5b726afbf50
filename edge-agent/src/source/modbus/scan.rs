//! One scan of one device: every planned read, with retries, decoded into readings. Shared
//! by the poller and by `vigil-agent modbus read`.

use std::time::Duration;

use vigil_core::{PointId, Quality, Reading, Timestamp};
use vigil_profile::Profile;

use super::client::{Raw, ReadError};
use super::link::Link;
use super::plan::ReadRequest;

/// What to scan and how patiently.
#[derive(Debug, Clone, Copy)]
pub struct ScanParams {
    pub unit: u8,
    pub timeout: Duration,
    /// Extra attempts of a failed read (0 = one attempt).
    pub retries: u32,
}

/// The result of one scan.
#[derive(Debug, Default)]
pub struct ScanOutcome {
    pub readings: Vec<Reading>,
    /// Requests sent, including retries.
    pub requests: u64,
    /// Round-trip times of the successful requests.
    pub rtts: Vec<Duration>,
    /// Every failed attempt.
    pub errors: Vec<ReadError>,
    /// Reads that failed after all retries.
    pub failed_reads: usize,
    /// Whether the device answered anything (data or an exception).
    pub answered: bool,
}

/// Scans `requests` of `profile` on `link` as device `device`. `first_only` probes with the
/// first read alone and no retry (a device in communication loss is probed, not scanned).
pub async fn scan(
    link: &mut Link,
    device: &str,
    profile: &Profile,
    requests: &[ReadRequest],
    params: ScanParams,
    first_only: bool,
) -> ScanOutcome {
    let mut out = ScanOutcome::default();
    let reads = if first_only {
        &requests[..requests.len().min(1)]
    } else {
        requests
    };
    let attempts = if first_only { 1 } else { params.retries + 1 };
    for req in reads {
        let mut got = None;
        for _ in 0..attempts {
            out.requests += 1;
            match link
                .read(params.unit, req.table, req.start, req.count, params.timeout)
                .await
            {
                Ok((raw, rtt)) => {
                    out.rtts.push(rtt);
                    got = Some(raw);
                    break;
                }
                Err(e) => {
                    out.answered |= e.is_answer();
                    let fatal = e.is_answer(); // an exception will not change on retry
                    out.errors.push(e);
                    if fatal {
                        break;
                    }
                }
            }
        }
        let Some(raw) = got else {
            out.failed_reads += 1;
            if !out.answered {
                // Nothing has answered in this scan: the device (or the link) is down. Asking
                // for the remaining reads would only hold the bus for more timeouts.
                out.failed_reads = reads.len();
                break;
            }
            continue;
        };
        out.answered = true;
        let ts = Timestamp::now();
        decode_into(&mut out, device, profile, req, &raw, ts);
    }
    out
}

fn decode_into(
    out: &mut ScanOutcome,
    device: &str,
    profile: &Profile,
    req: &ReadRequest,
    raw: &Raw,
    ts: Timestamp,
) {
    for &(idx, off) in &req.points {
        let point = &profile.points[idx];
        let off = usize::from(off);
        let value = match raw {
            Raw::Bits(bits) => bits.get(off).map(|b| Ok(vigil_profile::decode_bits(*b))),
            Raw::Registers(regs) => regs
                .get(off..off + usize::from(point.width()))
                .map(|slice| vigil_profile::decode_registers(point, slice)),
        };
        let value = match value {
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                out.errors.push(ReadError::Protocol(e.to_string()));
                continue;
            }
            None => {
                out.errors.push(ReadError::Protocol(format!(
                    "response too short for point {}",
                    point.name
                )));
                continue;
            }
        };
        match PointId::new(device, &point.name) {
            Ok(id) => out.readings.push(Reading {
                point: id,
                ts,
                value,
                quality: Quality::Good,
            }),
            Err(e) => out.errors.push(ReadError::Protocol(e.to_string())),
        }
    }
}
