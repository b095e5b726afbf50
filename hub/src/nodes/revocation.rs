//! Revocation: recording it ([`revoke_in_store`], shared by the API and the CLI) and
//! keeping the running hub's revocation set — the one the broker gate checks at every
//! handshake and on every live connection — in step with the store.
//!
//! At start the hub loads every revoked serial ([`load`]) before the gate listens. While it
//! runs, [`follow`] re-reads the revoked serials every [`FOLLOW_INTERVAL`], so a
//! `vigil-hub revoke` run against the same store (another process) takes effect within
//! seconds: the node's connections close and it cannot reconnect. A revocation through the
//! API takes effect at once (the handler revokes in the set itself).

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use vigil_core::{NodeId, Timestamp};
use vigil_link::SharedStore;
use vigil_pki::Revocations;
use vigil_store::{RevokeError, Store};

use crate::enroll::{audit_entry, EnrollMetrics, EnrollState, ACTION_REVOKE};

/// How often the running hub re-reads the revoked serials.
pub const FOLLOW_INTERVAL: Duration = Duration::from_secs(2);

/// Revokes `node`'s certificate `serial` (or all of them) in the store, audited as
/// `actor` through `via` (`api`, `cli`), in one transaction; the serials newly revoked.
pub fn revoke_in_store(
    store: &mut Store,
    enroll: &EnrollState,
    actor: &str,
    node: &NodeId,
    serial: Option<&str>,
    via: &str,
) -> Result<Vec<String>, RevokeError> {
    revoke_as(store, &enroll.node, actor, node, serial, via)
}

/// [`revoke_in_store`] for hub `hub` (the CLI, which has no running state).
pub fn revoke_as(
    store: &mut Store,
    hub: &NodeId,
    actor: &str,
    node: &NodeId,
    serial: Option<&str>,
    via: &str,
) -> Result<Vec<String>, RevokeError> {
    store.certificates_revoke(node.as_str(), serial, Timestamp::now(), actor, |revoked| {
        audit_entry(
            hub,
            actor,
            ACTION_REVOKE,
            node.as_str(),
            serde_json::json!({ "serial": serial, "revoked": revoked, "via": via }),
        )
    })
}

/// Rewrites the CRL for an external broker (when the hub keeps one); a failure is logged,
/// not fatal: the store holds the revocation.
pub fn rewrite_crl(store: &Store, enroll: &EnrollState) {
    if let Some(path) = &enroll.crl_path {
        if let Err(error) = crate::link::mosquitto::write_crl(store, &enroll.pki, path) {
            tracing::warn!(%error, path = %path.display(), "cannot rewrite the revocation list");
        }
    }
}

/// Loads every revoked serial of the store into `revocations`.
pub async fn load(store: &SharedStore, revocations: &Revocations) -> anyhow::Result<usize> {
    let revoked = store.call(|s| s.revoked_certificates()).await?;
    revocations.load(revoked.iter().map(|r| r.serial.as_str()));
    Ok(revoked.len())
}

/// Until `shutdown`: every [`FOLLOW_INTERVAL`], adds the serials revoked in the store since
/// (by another process) to `revocations`, counting them.
pub async fn follow(
    store: SharedStore,
    revocations: Revocations,
    metrics: EnrollMetrics,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(FOLLOW_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store.call(|s| s.revoked_certificates()).await {
            Ok(revoked) => {
                for r in revoked {
                    if revocations.revoke(&r.serial) {
                        metrics.revocations.inc();
                        tracing::info!(serial = %r.serial, "certificate revoked (by the command line): its connections close");
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot re-read the revoked certificates"),
        }
    }
}
