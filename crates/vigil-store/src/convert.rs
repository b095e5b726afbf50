//! Conversions between domain values and SQLite column values.
//!
//! SQLite integers are `i64`; Vigil's sequence numbers are `u64` and HLC stamps pack to
//! `u64`. Real values are far below 2^63, but a value read back from a damaged file or sent by
//! a confused peer may not be, so every conversion is checked and a failure is a typed error
//! naming the table and row instead of a silent wrap-around.

use vigil_core::{AlertEvent, Hlc, Lane};

use crate::error::{Result, StoreError};

/// The largest wall time (ms) whose packed stamp fits a non-negative `i64`: 2^47 - 1.
const MAX_STORABLE_WALL: u64 = (1 << 47) - 1;

/// A sequence number as a column value, or `None` when it does not fit.
pub(crate) fn seq_to_sql(seq: u64) -> Option<i64> {
    i64::try_from(seq).ok()
}

/// A sequence number as a column value, saturating at `i64::MAX` (for "after" bounds of
/// reads: nothing lies after a bound that large).
pub(crate) fn seq_bound_to_sql(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A count or size as a column value, saturating.
pub(crate) fn count_to_sql(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored non-negative integer (sequence number, counter) read back.
pub(crate) fn u64_from_sql(
    value: i64,
    table: &'static str,
    row: impl FnOnce() -> String,
) -> Result<u64> {
    u64::try_from(value).map_err(|_| StoreError::CorruptValue {
        table,
        row: row(),
        detail: format!("negative value {value} where a count or sequence number belongs"),
    })
}

/// A stored lane number read back.
pub(crate) fn lane_from_sql(
    value: i64,
    table: &'static str,
    row: impl FnOnce() -> String,
) -> Result<Lane> {
    Lane::ALL
        .into_iter()
        .find(|lane| lane.as_i64() == value)
        .ok_or_else(|| StoreError::CorruptValue {
            table,
            row: row(),
            detail: format!("unknown lane number {value}"),
        })
}

/// An event's HLC stamp as a column value: [`Hlc::pack`], checked to fit.
pub(crate) fn event_hlc_to_sql(event: &AlertEvent) -> Result<i64> {
    hlc_to_sql(event.hlc).ok_or(StoreError::HlcOutOfRange {
        event: event.id,
        hlc: event.hlc,
    })
}

/// A stamp packed for storage, or `None` when its wall time is too far in the future for the
/// packed form to fit (and round-trip through) a non-negative `i64`.
pub(crate) fn hlc_to_sql(hlc: Hlc) -> Option<i64> {
    if hlc.wall > MAX_STORABLE_WALL {
        return None;
    }
    i64::try_from(hlc.pack()).ok()
}

/// A packed stamp read back.
pub(crate) fn hlc_from_sql(
    value: i64,
    table: &'static str,
    row: impl FnOnce() -> String,
) -> Result<Hlc> {
    u64_from_sql(value, table, row).map(Hlc::unpack)
}

/// A 16-byte id read back from a BLOB column.
pub(crate) fn id_from_sql(
    blob: &[u8],
    table: &'static str,
    row: impl FnOnce() -> String,
) -> Result<[u8; 16]> {
    <[u8; 16]>::try_from(blob).map_err(|_| StoreError::CorruptValue {
        table,
        row: row(),
        detail: format!("id of {} bytes where 16 belong", blob.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_order_up_to_the_limit() {
        let real = Hlc::new(1_795_000_000_000, 3);
        let packed = hlc_to_sql(real).expect("real times fit");
        assert_eq!(hlc_from_sql(packed, "t", String::new).expect("back"), real);

        let top = Hlc::new(MAX_STORABLE_WALL, u16::MAX);
        let top_packed = hlc_to_sql(top).expect("the limit fits");
        assert_eq!(top_packed, i64::MAX);
        assert_eq!(
            hlc_from_sql(top_packed, "t", String::new).expect("back"),
            top
        );
        assert!(packed < top_packed);

        assert_eq!(hlc_to_sql(Hlc::new(MAX_STORABLE_WALL + 1, 0)), None);
        assert_eq!(
            hlc_to_sql(Hlc::new(u64::MAX, 0)),
            None,
            "no silent wrap of wall << 16"
        );
    }

    #[test]
    fn sequence_numbers_and_lanes() {
        assert_eq!(seq_to_sql(7), Some(7));
        assert_eq!(seq_to_sql(u64::MAX), None);
        assert_eq!(seq_bound_to_sql(u64::MAX), i64::MAX);
        assert!(u64_from_sql(-1, "outbox_lanes", || "x".into()).is_err());
        for lane in Lane::ALL {
            assert_eq!(
                lane_from_sql(lane.as_i64(), "t", String::new).expect("lane"),
                lane
            );
        }
        let err = lane_from_sql(9, "outbox_lanes", || "link parent".into()).expect_err("bad lane");
        assert!(err.to_string().contains("outbox_lanes"), "{err}");
        assert!(id_from_sql(&[0; 15], "events", String::new).is_err());
        assert_eq!(
            id_from_sql(&[1; 16], "events", String::new).expect("16 bytes"),
            [1; 16]
        );
    }
}
