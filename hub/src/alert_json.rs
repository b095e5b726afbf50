//! The alert as the API and the live stream show it: the one JSON shape of an alert, shared
//! with the agent's `GET /api/v1/alerts`, lives in vigil-store ([`vigil_store::alert_json`],
//! docs/ARCHITECTURE.md#alert-json).

pub use vigil_store::alert_json::{AlertJson, AlertList, AlertWithEvents, SourceJson};
