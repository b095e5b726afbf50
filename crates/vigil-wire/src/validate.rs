//! The checks that make every decoded message relayable: timestamps RFC 3339 can write.
//!
//! A hub decodes what its children send, stores it, and relays it to its parent with
//! [`encode`](crate::encode). Whatever one node accepts must therefore encode to bytes the
//! next node accepts, or one odd event would stall every link above it. JSON's own types
//! round-trip (see the crate's property tests and fuzz target); timestamps are the exception:
//! RFC 3339 has four-digit years, yet `9999-12-31T23:00:00-05:00` parses to an instant in
//! year 10000, which can then not be written back. So decoding (and [`try_encode`]) refuses
//! timestamps outside 0000-01-01T00:00:00.000Z ..= 9999-12-31T23:59:59.999Z.
//!
//! [`try_encode`]: crate::try_encode

use vigil_core::{AlertEventBody, Timestamp};

use crate::directive::DirectiveBody;
use crate::error::WireError;
use crate::event::LinkEvent;
use crate::message::Message;

/// 0000-01-01T00:00:00.000Z in milliseconds since the Unix epoch.
const MIN_MILLIS: i64 = -62_167_219_200_000;
/// 9999-12-31T23:59:59.999Z in milliseconds since the Unix epoch.
const MAX_MILLIS: i64 = 253_402_300_799_999;

/// The timestamps a directive's body holds, with their field names.
fn directive_timestamps(body: &DirectiveBody) -> Vec<(&'static str, Timestamp)> {
    match body {
        DirectiveBody::Posture { until } => vec![("until", *until)],
        DirectiveBody::Drill { start, end, .. } => vec![("start", *start), ("end", *end)],
        DirectiveBody::Snapshot { .. } | DirectiveBody::Order { .. } => Vec::new(),
    }
}

/// Refuses a message holding a timestamp that RFC 3339 cannot write.
pub(crate) fn check_timestamps(message: &Message) -> Result<(), WireError> {
    match message {
        Message::Batch(batch) => {
            for (i, event) in batch.events().iter().enumerate() {
                match event {
                    LinkEvent::Alert(alert) => {
                        if let Some((name, ts)) = body_timestamp(&alert.body) {
                            check(ts, || format!("events[{i}].alert.body.{name}"))?;
                        }
                    }
                    LinkEvent::Audit(record) => {
                        check(record.at, || format!("events[{i}].audit.at"))?
                    }
                    LinkEvent::Directive(directive) => {
                        check(directive.issued_at, || {
                            format!("events[{i}].directive.issued_at")
                        })?;
                        check(directive.deadline, || {
                            format!("events[{i}].directive.deadline")
                        })?;
                        for (name, ts) in directive_timestamps(&directive.body) {
                            check(ts, || format!("events[{i}].directive.body.{name}"))?;
                        }
                    }
                    LinkEvent::DirectiveAck(ack) => {
                        check(ack.at, || format!("events[{i}].directive_ack.at"))?
                    }
                }
            }
            Ok(())
        }
        Message::Ack(_) => Ok(()),
        Message::Status(status) => {
            check_opt(status.at, || "at".to_owned())?;
            if let Some(link) = &status.link {
                check_opt(link.last_ack_at, || "link.last_ack_at".to_owned())?;
            }
            for (i, child) in status.children.iter().enumerate() {
                check_opt(child.since, || format!("children[{i}].since"))?;
            }
            Ok(())
        }
    }
}

/// The one timestamp an alert event body holds, if any, with its field name.
fn body_timestamp(body: &AlertEventBody) -> Option<(&'static str, Timestamp)> {
    // Exhaustive on purpose: a new body variant with a timestamp must be added here.
    match body {
        AlertEventBody::Raised { at, .. }
        | AlertEventBody::ValueUpdated { at, .. }
        | AlertEventBody::Cleared { at, .. } => Some(("at", *at)),
        AlertEventBody::Shelved { until, .. } => Some(("until", *until)),
        AlertEventBody::Acknowledged { .. }
        | AlertEventBody::Reset
        | AlertEventBody::Unshelved
        | AlertEventBody::Commented { .. }
        | AlertEventBody::Assigned { .. }
        | AlertEventBody::Closed { .. }
        | AlertEventBody::Suppressed { .. }
        | AlertEventBody::OutOfService { .. }
        | AlertEventBody::Correlated { .. } => None,
    }
}

fn check_opt(ts: Option<Timestamp>, field: impl FnOnce() -> String) -> Result<(), WireError> {
    ts.map_or(Ok(()), |ts| check(ts, field))
}

fn check(ts: Timestamp, field: impl FnOnce() -> String) -> Result<(), WireError> {
    let millis = ts.as_millis();
    if (MIN_MILLIS..=MAX_MILLIS).contains(&millis) {
        Ok(())
    } else {
        Err(WireError::TimestampOutOfRange {
            field: field(),
            millis,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_exactly_what_rfc3339_writes_and_reads_back() {
        for millis in [MIN_MILLIS, MAX_MILLIS, 0] {
            let ts = Timestamp::from_millis(millis);
            let text = ts.to_string();
            assert_eq!(text.parse::<Timestamp>(), Ok(ts), "{text}");
        }
        assert_eq!(
            Timestamp::from_millis(MIN_MILLIS).to_string(),
            "0000-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_millis(MAX_MILLIS).to_string(),
            "9999-12-31T23:59:59.999Z"
        );
        for millis in [MIN_MILLIS - 1, MAX_MILLIS + 1] {
            let ts = Timestamp::from_millis(millis);
            assert!(ts.to_string().parse::<Timestamp>().is_err(), "{ts}");
            assert!(check(ts, String::new).is_err());
        }
    }

    #[test]
    fn offsets_can_reach_outside_the_range() {
        let late: Timestamp = "9999-12-31T23:00:00-05:00".parse().expect("valid RFC 3339");
        assert!(late.as_millis() > MAX_MILLIS);
        let early: Timestamp = "0000-01-01T00:00:00+01:00".parse().expect("valid RFC 3339");
        assert!(early.as_millis() < MIN_MILLIS);
    }
}
