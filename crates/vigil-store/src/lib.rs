//! Vigil's storage: one SQLite file per node holding what must survive a crash or a power
//! cut.
//!
//! - [`Store`] opens the file with the durability settings everything else relies on (WAL,
//!   `synchronous = FULL`) and applies the versioned migrations ([`SCHEMA_VERSION`]).
//! - The **outbox** ([`Store::outbox_append`], [`Store::outbox_next_batch`],
//!   [`Store::outbox_ack`]): per link, two lanes of sequence-numbered records, deleted only
//!   once the peer acknowledges that it has stored them.
//! - The **inbox** ([`Store::apply_batch`]): the receiving side of a link; a batch's events
//!   and the cursor that the next ack reports commit together;
//!   [`Store::apply_batch_and_forward`] also queues the new events for the node's own parent
//!   in that transaction.
//! - The **event store** ([`Store::apply_events`], [`Store::alert`], …): every alert event
//!   once by id, and each alert's ISA-18.2 view folded from them.
//! - The **audit log** ([`Store::audit_append`], [`Store::audit_verify`],
//!   [`Store::record_action`]): every operator and admin action in a hash chain; sent up the
//!   link as it is appended ([`audit_forward`]), and the children's trails held here
//!   ([`audit_remote`]).
//! - **Users, sessions and API tokens** ([`users`]): console sign-in, stored without any
//!   usable secret; admin changes audited in their own transaction.
//! - **Enrollment** ([`enrollment`]): one-time enrollment tokens (used and recorded with the
//!   certificate they bought in one transaction), the certificates issued to children, and
//!   their revocation.
//! - **Site bindings** ([`bindings`]): the site subtree each node speaks for (enrolled here,
//!   declared in hub.toml, reported by a child hub), and the child each alert came through.
//!
//! - **Directives** ([`directives`]): operators' directives issued here or received from the
//!   parent, what this node did with each, and its subtree's acknowledgements.
//!
//! See docs/ARCHITECTURE.md#data-path, docs/ARCHITECTURE.md#link-protocol and
//! docs/ARCHITECTURE.md#storage.

#![warn(missing_docs)]

mod action;
pub mod alert_json;
pub mod audit;
pub mod audit_forward;
pub mod audit_remote;
pub mod bindings;
pub mod checkpoint;
pub mod clamp;
pub mod context;
mod convert;
pub mod directives;
pub mod enrollment;
pub mod error;
pub mod events;
pub mod inbox;
pub mod inspect;
pub mod migrate;
pub mod outbox;
pub mod query;
mod record;
pub mod store;
mod stored_view;
pub mod users;
mod views;

pub use alert_json::{AlertJson, AlertList, AlertWithEvents, SourceJson};
pub use audit::{AuditEntry, AuditFault, AuditHead, AuditRecord, AuditReport};
pub use audit_forward::AuditForward;
pub use audit_remote::{compare_trail, AuditApplied, AuditListCursor, TrailCheck};
pub use bindings::{
    AdmitTx, AlertVia, BindingSource, ConfigConflict, NodeBinding, NodeKind, ReportedBinding,
    UnbindError, Unbound,
};
pub use clamp::{Clamped, ClockGuard, ResumePoint};
pub use context::{peak_severity, AlertContext};
pub use directives::{
    DirectiveView, DirectivesApplied, Handling, InboundDirectives, StoredAck, MAX_RELAYED_TO,
};
pub use enrollment::{
    EnrollmentToken, NewCertificate, NewEnrollmentToken, NodeCertificate, RedeemError, Redeemed,
    RevokeError, RevokedCertificate, TokenRefusal,
};
pub use error::{Result, StoreError};
pub use events::ApplyStats;
pub use inbox::{Admit, Admitted, BatchOutcome, ForwardOutcome, InboundBatch};
pub use inspect::{inspect, Inspection};
pub use migrate::SCHEMA_VERSION;
pub use outbox::{AckOutcome, LaneCursors, LaneState, OutboxBatch, OutboxRecord};
pub use query::{
    AlertCursor, AlertPage, AlertQuery, CursorError, OpenAlertCount, StateCount,
    DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT,
};
pub use store::{Store, BUSY_TIMEOUT};
pub use users::{NewSession, NewToken, NewUser, Session, Token, User, UserError};
