//! This hub's ancestors, brought up to date at every start
//! (docs/ARCHITECTURE.md#site-bindings-and-admission): its `[parent]` node and the hubs
//! above it, which no child may speak as (`vigil_link::admission`, `ancestor_origin`).
//!
//! `vigil-hub enroll` records the chain the parent's answer names (the parent first). At
//! start the hub checks its head against the `[parent]` CA certificate, whose common name a
//! Vigil hub's CA carries as `Vigil <level> CA <id>` (`crate::pki::ca_common_name`): the
//! chain is kept when it starts with that node, replaced by that node alone when it does not
//! (a hub enrolled before the chain was answered, or its parent files replaced by hand: the
//! hubs above are then unknown until it enrolls again), and emptied without a `[parent]`.
//! A CA certificate that is not a Vigil hub's (an external broker's) leaves the recorded
//! chain as it is.

use vigil_core::NodeId;
use vigil_pki::TlsFiles;

use super::LinkContext;

/// The hub a Vigil CA certificate's common name names: `Vigil county CA county-1` →
/// `county-1`.
pub fn hub_of_ca_name(common_name: &str) -> Option<NodeId> {
    let rest = common_name.strip_prefix("Vigil ")?;
    let (_level, id) = rest.split_once(" CA ")?;
    NodeId::new(id).ok()
}

/// The hub whose CA `files.ca` holds, if it is a Vigil hub's and reads.
pub fn parent_of(files: &TlsFiles) -> Option<NodeId> {
    let pem = std::fs::read_to_string(&files.ca).ok()?;
    let der = vigil_pki::cert::cert_from_pem(&pem, "[parent] ca").ok()?;
    hub_of_ca_name(&vigil_pki::common_name_of_certificate(der.as_ref()).ok()?)
}

/// The chain to record, from the one `stored`, whether this hub has a `[parent]`, and the
/// node its CA names (`None`: not known).
pub fn reconcile(stored: &[NodeId], has_parent: bool, parent: Option<NodeId>) -> Vec<NodeId> {
    match parent {
        _ if !has_parent => Vec::new(),
        None => stored.to_vec(),
        Some(p) if stored.first() == Some(&p) => stored.to_vec(),
        Some(p) => vec![p],
    }
}

/// Brings the recorded chain up to date (see the module docs); a failure is logged, and the
/// hub runs with what is recorded.
pub async fn sync(ctx: &LinkContext) {
    let has_parent = ctx.parent.is_some();
    let parent = ctx
        .parent
        .as_ref()
        .filter(|url| url.tls)
        .and(ctx.security.parent_tls.as_ref())
        .and_then(parent_of);
    let result = ctx
        .store
        .call(move |s| {
            let stored = s.ancestors()?;
            let chain = reconcile(&stored, has_parent, parent);
            let changed = s.ancestors_set(&chain)?;
            Ok((stored, chain, changed))
        })
        .await;
    match result {
        Ok((stored, chain, changed)) => {
            let names = |c: &[NodeId]| c.iter().map(NodeId::as_str).collect::<Vec<_>>().join(", ");
            if changed {
                tracing::warn!(before = %names(&stored), now = %names(&chain),
                    "the hubs above this one changed (the [parent] CA names another hub): no child may speak as them");
            } else if !chain.is_empty() {
                tracing::info!(ancestors = %names(&chain), "the hubs above this one: no child may speak as them");
            }
        }
        Err(error) => tracing::error!(%error, "cannot record the hubs above this one"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).expect("id")
    }

    #[test]
    fn the_chain_follows_the_parent_ca() {
        assert_eq!(hub_of_ca_name("Vigil city CA city-gz"), Some(id("city-gz")));
        assert_eq!(hub_of_ca_name("Corporate Root CA"), None);
        let chain = [id("city-gz"), id("ministry")];
        assert_eq!(reconcile(&chain, true, Some(id("city-gz"))), chain);
        assert_eq!(reconcile(&chain, true, None), chain);
        assert_eq!(
            reconcile(&chain, true, Some(id("city-sz"))),
            [id("city-sz")]
        );
        assert_eq!(reconcile(&[], true, Some(id("city-sz"))), [id("city-sz")]);
        assert!(reconcile(&chain, false, None).is_empty());
    }
}
