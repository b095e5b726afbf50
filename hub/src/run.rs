//! `vigil-hub run`: opens the store, starts the HTTP API, the live stream and the MQTT side,
//! and runs until shutdown.
//!
//! Start-up order: the store (its directory created if missing; the schema migrated; the
//! guard on the children's clocks set from `[link] max_clock_skew`), the clock resumed after
//! the store's greatest stamp within that skew, the HTTP listener (so a port already taken
//! fails the start with a message naming `[http] listen`), the live stream's task, then the MQTT side
//! through [`crate::link::start_links`] (the broker, the children's links, the uplink; a
//! broker address already taken fails the start too). On shutdown the listener stops
//! accepting, the live streams end, open requests finish, the links disconnect cleanly and
//! the embedded broker stops (all within [`SHUTDOWN_GRACE`]).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use vigil_link::SharedStore;
use vigil_runtime::Shutdown;
use vigil_store::Store;

use crate::action::record::ActionContext;
use crate::alarms::{run_alarms, AlarmContext, HubAlarms};
use crate::api::{router, AppState};
use crate::auth::AuthContext;
use crate::children::Children;
use crate::clock::HubClock;
use crate::config::HubConfig;
use crate::link::{start_links, LinkContext, OutboxPokes};
use crate::live::{run_ingest, LiveStream};
use crate::metrics::HubMetrics;
use crate::tree::ThisHub;

/// How long open requests get to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What a started hub hands to whoever started it (tests, and a supervisor that wants the
/// bound address when `[http] listen` asks for port 0).
#[derive(Debug, Clone)]
pub struct Started {
    /// The address the HTTP listener bound.
    pub http: SocketAddr,
    /// The URL children connect to (the embedded broker's, with the port it bound when
    /// `[mqtt] listen` asked for port 0).
    pub broker: String,
    /// The same context the MQTT side gets: store, clock, children, live stream.
    pub link: LinkContext,
}

/// Opens the store at `path`, creating its directory.
fn open_store(path: &std::path::Path) -> anyhow::Result<Store> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the store's directory {} ([store] path)",
                dir.display()
            )
        })?;
    }
    Ok(Store::open(path)?)
}

/// Runs the hub until `shutdown` is cancelled. Sends [`Started`] through `started` once the
/// HTTP listener is bound and the live stream runs.
pub async fn run(
    config: HubConfig,
    shutdown: CancellationToken,
    started: Option<tokio::sync::oneshot::Sender<Started>>,
) -> anyhow::Result<()> {
    let path = config.store.path.clone();
    // With a parent, the audit log travels up: queued with each append from now on (by any
    // process on this store: the CLI too), and the records not queued yet now.
    let audit_forward = config.parent.is_some().then(|| vigil_store::AuditForward {
        link: vigil_link::PARENT_LINK.to_owned(),
        origin: config.node.id.clone(),
    });
    let declared: Vec<_> = config
        .children
        .iter()
        .map(|c| (c.node.clone(), c.site.clone(), c.kind.into()))
        .collect();
    let max_skew = config.link.max_clock_skew;
    let (store, last_hlc) = tokio::task::spawn_blocking(move || {
        let mut store = open_store(&path)?;
        let queued = store.set_audit_forward(audit_forward.as_ref())?;
        if queued > 0 {
            tracing::info!(records = queued, "audit records queued for the parent");
        }
        // hub.toml's [[child]] bindings (docs/ARCHITECTURE.md#site-bindings-and-admission).
        for c in store.bindings_sync_config_kinds(&declared, vigil_core::Timestamp::now())? {
            tracing::warn!(node = %c.node, declared = %c.declared, enrolled = %c.held.site,
                "[[child]] declares a site for a node enrolled here with another: the enrolled site stays; remove the [[child]] entry or enroll the node again");
        }
        // docs/ARCHITECTURE.md#clocks-and-skew: children's stamps too far ahead are clamped,
        // and the clock resumes from no stamp beyond the bound.
        store.set_clock_guard(Some(&vigil_store::ClockGuard {
            max_skew,
            echo_prefix: vigil_link::CHILD_LINK_PREFIX.to_owned(),
        }))?;
        let last = crate::clock::resume_point(&store, max_skew, vigil_core::Timestamp::now())?;
        anyhow::Ok((store, last))
    })
    .await??;
    let store = SharedStore::new(store);
    let clock = HubClock::resume_with(last_hlc, max_skew);
    let metrics = HubMetrics::new();
    let (enroll, https) = crate::enroll::start::prepare(&config, &store, &metrics).await?;
    let (live, ingest_queue) = LiveStream::new(metrics.clone());
    let children = Children::new();
    let pokes = OutboxPokes::default();
    // The hub's own alarms about its nodes (crate::alarms), recorded like operator actions.
    let (alarms, alarm_queue) = HubAlarms::new(metrics.clone());
    let alarm_context = AlarmContext {
        node: config.node.id.clone(),
        site: config.node.site.clone(),
        has_parent: config.parent.is_some(),
        escalation: config.escalation.clone(),
        clock: clock.clone(),
        live: live.clone(),
        pokes: pokes.clone(),
        metrics: metrics.clone(),
    };

    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {} ([http] listen)", config.http.listen))?;
    let http = listener.local_addr()?;
    tracing::info!(
        node = %config.node.id, level = %config.node.level, name = %config.node.name,
        http = %http, store = %config.store.path.display(), parent = config.parent.is_some(),
        "hub listening"
    );
    if config.parent.is_none() && config.node.level != vigil_core::Level::Ministry {
        tracing::warn!(
            level = %config.node.level,
            "no [parent]: this hub's alerts and actions go to no upper level"
        );
    }

    let link = LinkContext {
        node: config.node.clone(),
        broker: config.broker(),
        parent: config.parent_url(),
        escalation: config.escalation.clone(),
        store: store.clone(),
        clock: clock.clone(),
        children: children.clone(),
        live: live.clone(),
        metrics: metrics.clone(),
        pokes: pokes.clone(),
        shutdown: shutdown.clone(),
        alarms,
        judge: config.link,
        security: crate::link::broker::LinkSecurity {
            pki: enroll.pki.clone(),
            broker_names: config
                .mqtt
                .as_ref()
                .map(|m| m.names.clone())
                .unwrap_or_default(),
            parent_tls: config.parent_tls_files(),
            enroll: enroll.clone(),
        },
    };
    let mut state = AppState {
        store: store.clone(),
        metrics,
        live: live.clone(),
        actions: ActionContext {
            node: config.node.id.clone(),
            has_parent: config.parent.is_some(),
            escalation: config.escalation.clone(),
            children: children.clone(),
            clock,
        },
        pokes,
        children,
        this: ThisHub {
            id: config.node.id.clone(),
            level: config.node.level,
            name: config.node.name.clone(),
            site: config.node.site.clone(),
        },
        stream_keep_alive: crate::api::stream::keep_alive_for(config.http.idle_timeout),
        request_timeout: config.http.request_timeout,
        shutdown: shutdown.clone(),
        auth: AuthContext::from_config(&config.auth),
        enroll: enroll.clone(),
    };
    // Served over HTTPS: the session cookie is Secure.
    state.auth.secure_cookie |= https.is_some();
    // The dummy password hash that unknown users are checked against, made before the
    // first sign-in needs it.
    tokio::task::spawn_blocking(crate::auth::password::warm_up).await?;

    // The tasks stop when `shutdown` is cancelled; `tasks` waits for them, within the grace.
    let tasks = Shutdown::with_token(shutdown.clone());
    tasks.spawn(crate::listener::serve(
        listener,
        https,
        router(state.clone()),
        crate::listener::Limits::from_config(&config.http),
        state.metrics.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(run_ingest(
        live,
        ingest_queue,
        store.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(run_alarms(
        alarm_queue,
        store.clone(),
        alarm_context,
        shutdown.clone(),
    ));
    tasks.spawn(crate::directives::run(
        store.clone(),
        crate::directives::HubDirectives {
            node: config.node.id.clone(),
            has_parent: config.parent.is_some(),
            site: config.node.site.clone(),
        },
        state.pokes.clone(),
        state.metrics.clone(),
        shutdown.clone(),
    ));
    let links = match start_links(link.clone(), &tasks).await {
        Ok(links) => links,
        Err(e) => {
            let _ = tasks.stop(SHUTDOWN_GRACE).await;
            return Err(e.context("cannot start the MQTT side"));
        }
    };
    crate::enroll::start::started(&enroll, &links.broker_url, &store, &shutdown, &tasks);
    if let Some(tx) = started {
        // The starter may have gone away; the hub runs on regardless.
        let _ = tx.send(Started {
            http,
            broker: links.broker_url,
            link,
        });
    }

    shutdown.cancelled().await;
    tracing::info!("hub stopping");
    let _ = tasks.stop(SHUTDOWN_GRACE).await;
    tracing::info!("hub stopped");
    Ok(())
}
