//! What `vigil-hub run` does for enrollment and mTLS: before anything listens, the CA is
//! opened (created the first time), the revoked serials are loaded, the CRL for an
//! external broker is rewritten and the HTTPS config made ([`prepare`]); once the broker
//! runs, its URL is what enrollment answers and the store's revocations are followed
//! ([`started`]).

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use vigil_link::SharedStore;
use vigil_pki::rustls::ServerConfig;

use super::{EnrollMetrics, EnrollState};
use crate::auth::LimitPolicy;
use crate::config::HubConfig;
use crate::metrics::HubMetrics;
use crate::pki::HubPki;

/// Opens the CA, loads the revocations, rewrites the CRL; the HTTPS config when
/// `[http] tls`.
pub async fn prepare(
    config: &HubConfig,
    store: &SharedStore,
    metrics: &HubMetrics,
) -> anyhow::Result<(EnrollState, Option<Arc<ServerConfig>>)> {
    let ca_dir = config.ca_dir();
    let pki = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || HubPki::open(&config))
            .await?
            .with_context(|| {
                format!(
                    "cannot open the hub's CA in {} ([ca] dir)",
                    ca_dir.display()
                )
            })?
    };
    let enroll_metrics =
        EnrollMetrics::new(metrics.registry()).context("cannot register the enrollment metrics")?;
    let mut enroll = EnrollState::new(
        pki.clone(),
        config.node.id.clone(),
        enroll_metrics,
        LimitPolicy::from_config(&config.auth),
        config.advertised_broker(),
    );
    enroll.crl_path = Some(crate::link::mosquitto::crl_path(config));
    let revoked = crate::nodes::revocation::load(store, pki.revocations()).await?;
    {
        let enroll = enroll.clone();
        store
            .call(move |s| {
                crate::nodes::revocation::rewrite_crl(s, &enroll);
                Ok(())
            })
            .await?;
    }
    tracing::info!(
        ca = %ca_dir.display(), fingerprint = %pki.ca().fingerprint(), revoked,
        "certificate authority ready"
    );
    let https = if config.http.tls {
        Some(
            pki.https_tls(&config.http)
                .context("cannot make the HTTPS certificate ([http] tls, names, cert, key)")?,
        )
    } else {
        None
    };
    Ok((enroll, https))
}

/// Once the broker runs at `broker_url`: enrollment answers it (unless `[mqtt] advertise`
/// says otherwise), and the store's revocations are followed until `shutdown`.
pub fn started(
    enroll: &EnrollState,
    broker_url: &str,
    store: &SharedStore,
    shutdown: &CancellationToken,
    tasks: &vigil_runtime::Shutdown,
) {
    if broker_url.starts_with("mqtts://") {
        enroll.set_broker_if_unset(broker_url.to_owned());
    }
    tasks.spawn(crate::nodes::revocation::follow(
        store.clone(),
        enroll.pki.revocations().clone(),
        enroll.metrics.clone(),
        shutdown.clone(),
    ));
}
