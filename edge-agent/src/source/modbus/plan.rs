//! Read planning: the fewest requests that read every point of a device.
//!
//! Modbus allows at most 125 registers (function codes 3, 4) or 2000 bits (1, 2) per read.
//! A scan that issues one request per point times out on a busy RTU bus; a scan that merges
//! neighbouring points into one read — bridging unused gaps of up to `max_gap` addresses —
//! issues the protocol minimum. Points are sorted by address and grouped greedily, each group
//! extending as far as the limits allow: for points on a line under a maximum span and a
//! maximum gap, greedy grouping is optimal (an exchange argument: any optimal plan's first
//! group can be stretched to greedy's first group without adding a request), so the plan's
//! request count is the protocol minimum. [`minimum_requests`] computes that minimum by
//! dynamic programming, independently, for tests and the bench.

use vigil_profile::{Point, Table};

/// The most registers one read may ask for (function codes 3 and 4).
pub const MAX_REGISTERS: u16 = 125;
/// The most bits one read may ask for (function codes 1 and 2).
pub const MAX_BITS: u16 = 2000;

/// One read request of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub table: Table,
    /// First 0-based protocol address.
    pub start: u16,
    /// Registers or bits to read.
    pub count: u16,
    /// The points this read serves: index into the profile's points, and the point's offset
    /// from `start`.
    pub points: Vec<(usize, u16)>,
}

/// The most a single read may cover in `table`.
pub const fn limit(table: Table) -> u16 {
    if table.is_bits() {
        MAX_BITS
    } else {
        MAX_REGISTERS
    }
}

/// The point spans of one table: `(first, last, point index)`, sorted.
fn spans(points: &[Point], table: Table) -> Vec<(u32, u32, usize)> {
    let mut out: Vec<(u32, u32, usize)> = points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.table == table)
        .map(|(i, p)| {
            let first = u32::from(p.address);
            (first, first + u32::from(p.width().max(1)) - 1, i)
        })
        .collect();
    out.sort_unstable();
    out
}

/// Plans the reads of one scan: per table (coils, discrete inputs, holding, input), greedy
/// groups under the request limit, bridging gaps of at most `max_gap` addresses.
pub fn plan(points: &[Point], max_gap: u16) -> Vec<ReadRequest> {
    let mut out = Vec::new();
    for table in [
        Table::Coil,
        Table::DiscreteInput,
        Table::Holding,
        Table::Input,
    ] {
        let lim = u32::from(limit(table));
        let mut current: Option<(u32, u32, Vec<usize>)> = None;
        for (first, last, idx) in spans(points, table) {
            if let Some((start, end, members)) = current.as_mut() {
                let gap = first.saturating_sub(*end + 1);
                let new_end = (*end).max(last);
                if gap <= u32::from(max_gap) && new_end - *start < lim {
                    *end = new_end;
                    members.push(idx);
                    continue;
                }
                out.push(request(table, *start, *end, members, points));
            }
            current = Some((first, last, vec![idx]));
        }
        if let Some((start, end, members)) = current {
            out.push(request(table, start, end, &members, points));
        }
    }
    out
}

fn request(table: Table, start: u32, end: u32, members: &[usize], points: &[Point]) -> ReadRequest {
    // Addresses are u16 by construction and a group spans at most `limit` ≤ 2000.
    let start16 = u16::try_from(start).unwrap_or(u16::MAX);
    ReadRequest {
        table,
        start: start16,
        count: u16::try_from(end - start + 1).unwrap_or(u16::MAX),
        points: members
            .iter()
            .map(|&i| (i, points[i].address - start16))
            .collect(),
    }
}

/// The protocol minimum number of reads for these points: a dynamic program over each table's
/// sorted points, independent of [`plan`]'s greedy construction.
pub fn minimum_requests(points: &[Point], max_gap: u16) -> usize {
    let mut total = 0;
    for table in [
        Table::Coil,
        Table::DiscreteInput,
        Table::Holding,
        Table::Input,
    ] {
        let s = spans(points, table);
        let lim = u32::from(limit(table));
        // best[i] = fewest reads covering the first i points (in address order).
        let mut best = vec![usize::MAX; s.len() + 1];
        best[0] = 0;
        for i in 0..s.len() {
            if best[i] == usize::MAX {
                continue;
            }
            let start = s[i].0;
            let mut end = s[i].1;
            for j in i..s.len() {
                if j > i {
                    if s[j].0.saturating_sub(end + 1) > u32::from(max_gap) {
                        break;
                    }
                    end = end.max(s[j].1);
                }
                if end - start >= lim {
                    break;
                }
                best[j + 1] = best[j + 1].min(best[i] + 1);
            }
        }
        total += best[s.len()];
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vigil_profile::{ByteOrder, DataType, WordOrder};

    fn pt(table: Table, address: u16, data_type: DataType) -> Point {
        Point {
            name: format!("p{address}"),
            table,
            address,
            data_type,
            length: (data_type == DataType::String).then_some(10),
            bit: None,
            word_order: WordOrder::Big,
            byte_order: ByteOrder::Big,
            scale: 1.0,
            offset: 0.0,
            unit: None,
            description: None,
            zone: None,
            alarm: None,
            limits: None,
            rate: None,
            stale: None,
            flatline: None,
        }
    }

    #[test]
    fn neighbours_merge_and_gaps_split() {
        let points = vec![
            pt(Table::Input, 0, DataType::F32),
            pt(Table::Input, 2, DataType::U16),
            pt(Table::Input, 10, DataType::U16),
            pt(Table::Input, 40, DataType::U16),
            pt(Table::DiscreteInput, 0, DataType::Bool),
            pt(Table::DiscreteInput, 7, DataType::Bool),
        ];
        let reqs = plan(&points, 8);
        assert_eq!(reqs.len(), 3, "{reqs:#?}");
        assert_eq!(
            (reqs[0].table, reqs[0].start, reqs[0].count),
            (Table::DiscreteInput, 0, 8)
        );
        assert_eq!(
            (reqs[1].table, reqs[1].start, reqs[1].count),
            (Table::Input, 0, 11)
        );
        assert_eq!(reqs[1].points, vec![(0, 0), (1, 2), (2, 10)]);
        assert_eq!((reqs[2].start, reqs[2].count), (40, 1));
        assert_eq!(plan(&points, 0).len(), 5, "no gap bridging");
    }

    #[test]
    fn the_register_limit_splits_reads() {
        let points: Vec<Point> = (0..100)
            .map(|i| pt(Table::Holding, i * 2, DataType::U32))
            .collect();
        let reqs = plan(&points, 0);
        assert_eq!(reqs.len(), 2);
        assert!(reqs.iter().all(|r| r.count <= MAX_REGISTERS));
        assert_eq!(reqs[0].count, 124, "a u32 does not straddle two reads");
        let bits: Vec<Point> = (0..2500)
            .map(|i| pt(Table::Coil, i, DataType::Bool))
            .collect();
        assert_eq!(plan(&bits, 0).len(), 2);
    }

    #[test]
    fn the_last_address_is_reachable() {
        let points = vec![
            pt(Table::Holding, 65534, DataType::U16),
            pt(Table::Holding, 65535, DataType::U16),
        ];
        let reqs = plan(&points, 0);
        assert_eq!((reqs[0].start, reqs[0].count), (65534, 2));
    }

    fn arb_points() -> impl Strategy<Value = Vec<Point>> {
        prop::collection::vec(
            (
                0usize..4,
                0u16..600,
                prop::sample::select(vec![
                    DataType::U16,
                    DataType::U32,
                    DataType::F64,
                    DataType::String,
                ]),
            ),
            1..80,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(t, a, d)| {
                    let table = [
                        Table::Coil,
                        Table::DiscreteInput,
                        Table::Holding,
                        Table::Input,
                    ][t];
                    pt(table, a, if table.is_bits() { DataType::Bool } else { d })
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn plans_are_minimal_and_cover_every_point(points in arb_points(), max_gap in 0u16..40) {
            let reqs = plan(&points, max_gap);
            prop_assert_eq!(reqs.len(), minimum_requests(&points, max_gap));
            let mut covered = vec![false; points.len()];
            for r in &reqs {
                prop_assert!(r.count >= 1 && r.count <= limit(r.table));
                for &(i, off) in &r.points {
                    let p = &points[i];
                    prop_assert_eq!(p.table, r.table);
                    prop_assert_eq!(p.address - r.start, off);
                    prop_assert!(off + p.width() <= r.count, "point inside the read");
                    covered[i] = true;
                }
            }
            prop_assert!(covered.iter().all(|c| *c));
        }
    }
}
