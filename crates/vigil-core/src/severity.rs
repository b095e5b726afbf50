//! Alert severity and what it maps to: the outbox lane and CAP 1.2's severity and urgency.
//!
//! Vigil's five severities follow the ISA-18.2 habit of few, well-separated priorities. The
//! mapping to CAP 1.2 (`<severity>`, `<urgency>`) is fixed here, once, so that every feed
//! agrees.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How bad an alert is. Ordered: `Critical` is the greatest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Minor,
    Major,
    Critical,
}

/// CAP 1.2 `<severity>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CapSeverity {
    Extreme,
    Severe,
    Moderate,
    Minor,
    Unknown,
}

/// CAP 1.2 `<urgency>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CapUrgency {
    Immediate,
    Expected,
    Future,
    Past,
    Unknown,
}

/// The outbox lane an event travels in: `critical` is always drained before `normal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    Critical,
    Normal,
}

impl Lane {
    /// Both lanes in drain order.
    pub const ALL: [Lane; 2] = [Lane::Critical, Lane::Normal];

    /// The lane's name on the wire and in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Lane::Critical => "critical",
            Lane::Normal => "normal",
        }
    }

    /// A small integer for storage (critical = 0 sorts first).
    pub const fn as_i64(self) -> i64 {
        match self {
            Lane::Critical => 0,
            Lane::Normal => 1,
        }
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Severity {
    /// All severities, most severe first.
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::Major,
        Severity::Minor,
        Severity::Warning,
        Severity::Info,
    ];

    /// The severity's name in config, the API and on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Major => "major",
            Severity::Minor => "minor",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    /// CAP 1.2 `<severity>`: critical → Extreme, major → Severe, minor → Moderate,
    /// warning and info → Minor.
    pub const fn cap_severity(self) -> CapSeverity {
        match self {
            Severity::Critical => CapSeverity::Extreme,
            Severity::Major => CapSeverity::Severe,
            Severity::Minor => CapSeverity::Moderate,
            Severity::Warning | Severity::Info => CapSeverity::Minor,
        }
    }

    /// CAP 1.2 `<urgency>` of an active alert: critical and major need action now
    /// (Immediate), minor and warning soon (Expected), info at some point (Future). A
    /// cleared alert's urgency is `Past` whatever its severity; feeds apply that.
    pub const fn cap_urgency(self) -> CapUrgency {
        match self {
            Severity::Critical | Severity::Major => CapUrgency::Immediate,
            Severity::Minor | Severity::Warning => CapUrgency::Expected,
            Severity::Info => CapUrgency::Future,
        }
    }

    /// The outbox lane: critical and major alerts travel in the critical lane.
    pub const fn lane(self) -> Lane {
        match self {
            Severity::Critical | Severity::Major => Lane::Critical,
            _ => Lane::Normal,
        }
    }

    /// One step more severe (an incident fused from several conditions); critical stays.
    pub const fn escalated(self) -> Severity {
        match self {
            Severity::Info => Severity::Warning,
            Severity::Warning => Severity::Minor,
            Severity::Minor => Severity::Major,
            Severity::Major | Severity::Critical => Severity::Critical,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_and_lanes() {
        assert!(Severity::Critical > Severity::Major);
        assert!(Severity::Warning > Severity::Info);
        assert_eq!(Severity::Major.lane(), Lane::Critical);
        assert_eq!(Severity::Minor.lane(), Lane::Normal);
        assert_eq!(Severity::Info.escalated(), Severity::Warning);
        assert_eq!(Severity::Critical.escalated(), Severity::Critical);
    }

    #[test]
    fn cap_mapping_is_total_and_monotone() {
        let rank = |s: CapSeverity| match s {
            CapSeverity::Extreme => 4,
            CapSeverity::Severe => 3,
            CapSeverity::Moderate => 2,
            CapSeverity::Minor => 1,
            CapSeverity::Unknown => 0,
        };
        for pair in Severity::ALL.windows(2) {
            assert!(rank(pair[0].cap_severity()) >= rank(pair[1].cap_severity()));
        }
        assert_eq!(Severity::Critical.cap_severity(), CapSeverity::Extreme);
        assert_eq!(Severity::Critical.cap_urgency(), CapUrgency::Immediate);
        assert_eq!(Severity::Info.cap_urgency(), CapUrgency::Future);
    }
}
