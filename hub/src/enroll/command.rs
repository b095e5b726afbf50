//! What `vigil-hub enroll-token`, `revoke`, `broker-config` and `enroll` do once their
//! config is loaded. Secrets (a token) go to standard output, with the one command line the
//! installer runs; everything else to standard error. Every change is audited with the
//! actor `cli:<unix user>`.

use std::path::Path;

use vigil_store::Store;

use super::args::{
    BrokerConfigArgs, EnrollArgs, EnrollTokenArgs, NodesArgs, RevokeArgs, UnbindArgs,
};
use crate::auth::admin::cli_actor;
pub use crate::cli_error::CommandError;
use crate::config::HubConfig;
use crate::link::mosquitto::{crl_path, write_crl};
use crate::nodes::revocation::revoke_as;
use crate::pki::HubPki;

/// Opens (creating if needed) the hub's store.
pub fn open_store(config: &HubConfig) -> Result<Store, CommandError> {
    let path = &config.store.path;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            CommandError::Message(format!(
                "cannot create the store's directory {} ([store] path): {e}",
                dir.display()
            ))
        })?;
    }
    Ok(Store::open(path)?)
}

/// `vigil-hub enroll-token --node ID --site SITE [--kind hub] --ttl 1h`.
pub fn enroll_token(args: &EnrollTokenArgs, config: &HubConfig) -> Result<(), CommandError> {
    let mut store = open_store(config)?;
    let pki = HubPki::open(config)?;
    let issued = super::token::issue(
        &mut store,
        &pki,
        config,
        &args.node,
        &args.site,
        args.kind,
        args.ttl,
        &cli_actor(),
    )?;
    let (what, other) = match args.kind {
        vigil_store::NodeKind::Gateway => (
            "on the gateway",
            "A child hub needs a token issued with --kind hub",
        ),
        vigil_store::NodeKind::Hub => (
            "on the child hub",
            "A gateway needs a token issued without --kind hub",
        ),
    };
    eprintln!(
        "enrollment token for {} {} at site {} (works once, until {}); {what}, run the line after it:",
        issued.kind.as_str(),
        issued.node,
        issued.site,
        issued.expires_at
    );
    println!("{}", issued.token);
    println!("{}", issued.command());
    eprintln!(
        "the token goes on the command's standard input, never in its arguments (where `ps` \
         and the shell history would show it): run the line, then paste the token when it \
         asks; in a script: ... --token - <<<\"$TOKEN\". {other}."
    );
    if issued.hub_url.starts_with("http://") {
        eprintln!(
            "note: [http] tls is off, so the token crosses the network in clear: enroll over a \
             trusted network, or set [http] tls = true"
        );
    }
    Ok(())
}

/// `vigil-hub revoke --node ID [--serial S]`: recorded in the store (a running hub on the
/// same store picks it up within seconds) with the CRL next to the store rewritten.
pub fn revoke(args: &RevokeArgs, config: &HubConfig) -> Result<(), CommandError> {
    let mut store = open_store(config)?;
    let serial = args.serial.as_deref().map(vigil_pki::normalize_serial);
    let revoked = revoke_as(
        &mut store,
        &config.node.id,
        &cli_actor(),
        &args.node,
        serial.as_deref(),
        "cli",
    )?;
    if revoked.is_empty() {
        eprintln!("node {}: already revoked, nothing changed", args.node);
    } else {
        for s in &revoked {
            println!("revoked {} {s}", args.node);
        }
        eprintln!(
            "a running hub drops the node's connections within seconds; an external broker \
             must reload its CRL (SIGHUP)"
        );
    }
    refresh_crl(config, &store);
    Ok(())
}

/// `vigil-hub unbind --node ID`: removes the node's enrolled binding (with the bindings
/// reported through it, for a child hub) and revokes its certificates, audited
/// (`node.unbind`) in one transaction (docs/ARCHITECTURE.md#site-bindings-and-admission).
/// A node declared in hub.toml (`[[child]]`) is refused: the config is where it is bound. A
/// running hub on the same store drops its connections within seconds (the revocation) and
/// holds back any batch of it it still gets (no binding).
pub fn unbind(args: &UnbindArgs, config: &HubConfig) -> Result<(), CommandError> {
    if let Some(child) = config.children.iter().find(|c| c.node == args.node) {
        return Err(CommandError::Message(format!(
            "node {} is declared in hub.toml ([[child]] with site {}): remove it from hub.toml and restart the hub; nothing changed",
            args.node, child.site
        )));
    }
    let mut store = open_store(config)?;
    let actor = cli_actor();
    let hub = config.node.id.clone();
    let unbound = store.binding_unbind(&args.node, vigil_core::Timestamp::now(), &actor, |u| {
        super::audit_entry(
            &hub,
            &actor,
            super::ACTION_UNBIND,
            args.node.as_str(),
            serde_json::json!({
                "site": u.binding.site.as_str(),
                "kind": u.binding.kind.map(vigil_store::NodeKind::as_str),
                "revoked": u.revoked,
                "reported": u.reported.iter().map(vigil_core::NodeId::as_str).collect::<Vec<_>>(),
                "via": "cli",
            }),
        )
    })?;
    println!("unbound {} site {}", args.node, unbound.binding.site);
    for s in &unbound.revoked {
        println!("revoked {} {s}", args.node);
    }
    if !unbound.reported.is_empty() {
        eprintln!(
            "with it, the bindings of the {} node(s) it reported: {}",
            unbound.reported.len(),
            unbound
                .reported
                .iter()
                .map(vigil_core::NodeId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    eprintln!(
        "a running hub drops the node's connections within seconds and holds back whatever \
         it still sends; an external broker must reload its CRL (SIGHUP). To bind it again, \
         issue it a new token (vigil-hub enroll-token --node {} --site SITE)",
        args.node
    );
    refresh_crl(config, &store);
    Ok(())
}

/// `vigil-hub nodes`: every node bound here — enrolled, declared in hub.toml, or reported
/// by a child hub — with its site, how it is known, and its certificates (serial, expiry,
/// revoked); nodes with a token not used yet (pending), and nodes certified here but bound
/// to no site (unbound: everything they send is held back). One line per node, then one
/// indented line per certificate, on standard output; last, the hubs above this one.
pub fn nodes(_args: &NodesArgs, config: &HubConfig) -> Result<(), CommandError> {
    let store = open_store(config)?;
    let now = vigil_core::Timestamp::now();
    let bindings = store.node_bindings()?;
    let pending: Vec<_> = store
        .enrollment_tokens()?
        .into_iter()
        .filter(|t| t.used_at.is_none() && t.expires_at > now)
        .filter(|t| !bindings.iter().any(|b| b.node.as_str() == t.node))
        .collect();
    // [[child]] entries a running hub has not synced yet (it does at start).
    let declared: Vec<_> = config
        .children
        .iter()
        .filter(|c| !bindings.iter().any(|b| b.node == c.node))
        .collect();
    // Certified here but bound to no site (enrolled before bindings): everything they send
    // is refused until they are enrolled again with --site or declared in [[child]].
    let unbound: Vec<String> = store
        .certified_nodes()?
        .into_iter()
        .filter(|n| n != config.node.id.as_str())
        .filter(|n| !bindings.iter().any(|b| b.node.as_str() == n))
        .collect();
    if bindings.is_empty() && pending.is_empty() && declared.is_empty() && unbound.is_empty() {
        eprintln!(
            "no node is bound to this hub yet: `vigil-hub enroll-token --node ID --site SITE` \
             enrolls one; [[child]] in hub.toml declares one of an external broker"
        );
    }
    for c in declared {
        println!(
            "{}  site {}  config (in effect once the hub restarts)",
            c.node, c.site
        );
    }
    for t in pending {
        println!(
            "{}  site {}  pending (a token until {}; not enrolled yet)",
            t.node,
            t.site.as_deref().unwrap_or("-"),
            t.expires_at
        );
    }
    for node in &unbound {
        let certificates = store.node_certificates(node)?;
        if !certificates.is_empty() && certificates.iter().all(|c| c.revoked_at.is_some()) {
            println!("{node}  no site  unbound, certificates revoked (vigil-hub unbind; a new token binds it again)");
        } else {
            println!(
                "{node}  no site  unbound (enroll it again with --site, or declare it in [[child]])"
            );
        }
        print_certificates(&store, node, now)?;
    }
    for b in &bindings {
        let mut line = format!("{}  site {}  {}", b.node, b.site, b.source.as_str());
        if let Some(kind) = b.kind {
            line.push_str(&format!("  {}", kind.as_str()));
        }
        if let Some(via) = &b.via {
            line.push_str(&format!(" via {via}"));
        }
        if let Some(parent) = &b.parent {
            line.push_str(&format!(" (enrolled with {parent})"));
        }
        println!("{line}");
        print_certificates(&store, b.node.as_str(), now)?;
    }
    let above = store.ancestors()?;
    if !above.is_empty() {
        println!(
            "above this hub: {} (its parent first; no child may speak as them)",
            above
                .iter()
                .map(vigil_core::NodeId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// One indented line per certificate of `node`: serial, expiry, status, site.
fn print_certificates(
    store: &Store,
    node: &str,
    now: vigil_core::Timestamp,
) -> Result<(), CommandError> {
    for c in store.node_certificates(node)? {
        let status = if let Some(at) = c.revoked_at {
            format!("revoked {at}")
        } else if c.not_after <= now {
            "expired".to_owned()
        } else {
            "valid".to_owned()
        };
        let site = c
            .site
            .as_deref()
            .map(|s| format!("  site {s}"))
            .unwrap_or_default();
        println!(
            "  certificate {}  until {}  {status}{site}",
            c.serial, c.not_after
        );
    }
    Ok(())
}

/// Rewrites the CRL next to the store, when the hub has a CA (an external broker reads it);
/// a failure is reported, not fatal (the store holds the revocation).
pub fn refresh_crl(config: &HubConfig, store: &Store) {
    if !config.ca_dir().join(vigil_pki::CA_CERT_FILE).exists() {
        return;
    }
    let result = HubPki::open(config)
        .map_err(CommandError::from)
        .and_then(|pki| write_crl(store, &pki, &crl_path(config)));
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot rewrite the revocation list");
        eprintln!("warning: cannot rewrite the revocation list: {e}");
    }
}

/// `vigil-hub broker-config --out DIR`.
pub fn broker_config(args: &BrokerConfigArgs, config: &HubConfig) -> Result<(), CommandError> {
    let store = open_store(config)?;
    let pki = HubPki::open(config)?;
    let files = crate::link::mosquitto::write(
        config,
        &store,
        &pki,
        &args.out,
        &args.names,
        args.listen,
        args.user.as_deref(),
    )?;
    println!("{}", files.conf.display());
    eprintln!(
        "wrote {} (listener {}, certificate for {}); run: mosquitto -c {}",
        args.out.display(),
        files.listen,
        files.names.join(", "),
        files.conf.display()
    );
    eprintln!(
        "the hub rewrites {} at every revocation: reload Mosquitto (SIGHUP) after one",
        files.crl.display()
    );
    Ok(())
}

/// `vigil-hub enroll --hub URL --token - [--force]`: the token from standard input (a
/// token in the arguments is refused before it is used); the steps on standard error, the
/// parent's broker URL on standard output.
pub fn enroll(
    args: &EnrollArgs,
    config: &HubConfig,
    config_path: &Path,
) -> Result<(), CommandError> {
    // A token that is not one is a usage error (exit 2, as for vigil-agent enroll); standard
    // input that cannot be read is not.
    let token = vigil_pki::enrollment::token::token_from_arg(&args.token).map_err(|e| match e {
        vigil_pki::TokenError::Stdin(_) => CommandError::Message(format!("--token: {e}")),
        _ => CommandError::Usage(format!("--token: {e}")),
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CommandError::Message(format!("cannot start the runtime: {e}")))?;
    let mut err = std::io::stderr();
    let enrolled = rt.block_on(super::parent::enroll_parent(
        config,
        config_path,
        &args.hub,
        &token.to_string(),
        args.force,
        args.timeout,
        &mut err,
    ))?;
    println!("{}", enrolled.broker);
    let _ = enrolled.report(
        &format!(
            "`vigil-hub check --config {0}`, then restart the hub to link up with its parent",
            config_path.display()
        ),
        &mut err,
    );
    Ok(())
}
