//! Building VTP from its configuration and running it until shutdown.
//!
//! [`Server::run`] takes a bound listener and a shutdown future, like
//! mini-redis's `run(listener, shutdown)`: tests bind port 0 and shut the
//! server down with a channel; `vtp serve` passes SIGINT/SIGTERM.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use vtp_store::{FinishedRecording, RecordingState, Store, StoreOptions};

use crate::api::{self, HttpOptions};
use crate::audit::{Audit, AuditRetention};
use crate::auth::password::Passwords;
use crate::auth::sealing::{Sealer, seal_stored_totp_secrets};
use crate::auth::tokens::{KeySource, TokenIssuer};
use crate::bus::{Bus, LocalBus};
use crate::config::{NodeRole, RecordingStorageArgs, ServeArgs};
use crate::recording::RecordingConfig;
use crate::recording::export::queue::QueueConfig;
use crate::recording::export::{ExportQueue, ExportSettings};
use crate::recording::storage::{BucketSettings, ReadySignal, RecordingFiles};
use crate::rooms::{HubConfig, RoomHub};
use crate::serve::{self, ConnectionLimits};
use crate::sfu_api::{self, RemoteSfu};
use crate::signalling::{self, SignalLimits};
use crate::state::{AppParts, AppState, Policy, WebhookPolicy};
use crate::tls::{self, Tls};
use crate::turn::TurnConfig;
use crate::webhooks::Webhooks;
use crate::webhooks::deliver::DeliveryConfig;
use vtp_sfu_driver::{DriverConfig, SfuControl, SfuDriver};

/// Shortest `--metrics-token` accepted: guessing must be hopeless.
const MIN_METRICS_TOKEN: usize = 16;
/// Connections open at once on `--metrics-bind` (a few Prometheus servers).
const METRICS_CONNECTIONS: usize = 16;

pub use vtp_store::MAX_ROOM_PARTICIPANTS;

/// A configured server, ready to run.
pub struct Server {
    state: AppState,
    http: HttpOptions,
    signal_limits: SignalLimits,
    /// The Socket.IO sessions' caps and deadline (its protocol settings
    /// come from `signal_limits`).
    sessions: vtp_sio::Config,
    connection_limits: ConnectionLimits,
    grace: Duration,
    media: Arc<dyn SfuControl>,
    /// Serve `/sfu/v1` for other API nodes (an `all` node with a secret).
    sfu_api: Option<crate::config::Secret>,
    /// HTTPS, when configured.
    tls: Option<Tls>,
    /// Keeps the certificate current (file reloads or ACME); made in
    /// `build` so that no SIGHUP is missed, spawned by `run`.
    tls_reloader: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// The plain-HTTP listener that redirects to HTTPS (`--http-redirect-bind`).
    redirect: Option<TcpListener>,
    /// `/metrics` on its own address (`--metrics-bind`), and its token.
    metrics: (Option<TcpListener>, Option<crate::config::Secret>),
}

impl Server {
    /// Opens the store (migrating it), loads or creates the signing key,
    /// and starts the SFU (`--role all`) or connects to it (`--role api`).
    pub async fn build(args: &ServeArgs) -> anyhow::Result<Server> {
        // Certificates first: a bad one stops the start before anything opens.
        let tls = Tls::from_args(&args.tls, &args.store.data_dir)?;
        tls::warn_if_insecure(args.bind, tls.is_some());
        let redirect = match tls.as_ref().and_then(Tls::redirect_bind) {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (--http-redirect-bind)"))?,
            ),
            None => None,
        };
        let tls_reloader = tls.as_ref().map(Tls::background);
        if let Some(secret) = &args.sfu_secret {
            crate::config::check_sfu_secret(secret).map_err(anyhow::Error::msg)?;
        }
        let metrics = metrics_access(args).await?;
        let media = media_for(args)?;
        std::fs::create_dir_all(&args.store.data_dir).with_context(|| {
            format!(
                "cannot create data directory {}",
                args.store.data_dir.display()
            )
        })?;
        let mut options = StoreOptions::new(args.store.database_url());
        options.max_connections = args.store.database_max_connections;
        let store = Store::open(options)
            .await
            .context("cannot open the store")?;
        // A crash leaves sessions open and rooms live, with nobody in them now.
        let repaired = store.close_abandoned_sessions(chrono::Utc::now()).await?;
        if repaired > 0 {
            tracing::warn!(
                sessions = repaired,
                "closed sessions left open by an earlier crash"
            );
        }
        let (key, source) = TokenIssuer::load_key(args.jwt_secret.as_ref(), &args.store.data_dir)?;
        let tokens = TokenIssuer::new(&key, args.access_token_ttl, args.refresh_token_ttl, source);
        let sealer = Sealer::load(args.secrets_key.as_ref(), &args.store.data_dir)?;
        let sealed = seal_stored_totp_secrets(&store, &sealer).await?;
        if sealed > 0 {
            tracing::info!(
                secrets = sealed,
                "sealed two-factor secrets stored in the clear by an earlier version"
            );
        }
        let passwords = Passwords::new().await?;
        let policy = Policy {
            allow_registration: args.allow_registration,
            trust_forwarded_for: args.trust_forwarded_for.clone(),
            max_room_participants: MAX_ROOM_PARTICIPANTS,
            require_2fa_for: args.require_2fa_for.iter().map(|&r| r.into()).collect(),
        };
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::default());
        let ready = ReadySignal::default();
        let recording_files = Arc::new(recording_files(args, ready.clone())?);
        let recording = RecordingConfig {
            dir: args.store.data_dir.join("recordings"),
            max_duration: args.max_recording_duration,
            max_track_bytes: args.max_recording_track_bytes,
            min_free_bytes: args.recording_min_free_bytes,
            ready,
        };
        repair_recordings(&store, &recording.dir).await;
        let turn = TurnConfig::from_settings(
            &args.turn.turn_urls,
            args.turn.turn_secret.as_ref(),
            args.turn.turn_credential_ttl,
        )?;
        if let Some(turn) = &turn {
            tracing::info!(urls = ?turn.urls(), "TURN relays offered to clients");
        }
        let (audit, webhooks) = audit_and_webhooks(args, &store);
        let hub_config = HubConfig {
            turn,
            webhooks: webhooks.clone(),
            audit: audit.clone(),
            reconnect_grace: args.reconnect_grace,
            chat_burst: args.chat_burst,
            recording,
            ..HubConfig::default()
        };
        let exports = ExportQueue::start(
            store.clone(),
            export_queue_config(args, &recording_files, &webhooks),
        )
        .await;
        let hub = RoomHub::new(store.clone(), bus.clone(), media.clone(), hub_config);
        tokio::spawn(hub.clone().run_media_events(media.events()));
        let state = AppState::new(AppParts {
            store,
            tokens,
            sealer,
            passwords,
            login_rate_per_ip: args.login_rate_per_ip,
            login_rate_per_account: args.login_rate_per_account,
            policy,
            bus,
            hub,
            recordings_dir: args.store.data_dir.join("recordings"),
            exports,
            recording_files,
            audit,
            webhooks,
            webhook_policy: WebhookPolicy {
                max_endpoints: args.webhooks.webhook_max_endpoints,
                allow_private: args.webhooks.webhook_allow_private_targets,
            },
        });
        if let Some(tls) = &tls {
            state.metrics.watch_certificate(tls.resolver().clone());
        }
        let http = HttpOptions {
            max_body_bytes: args.max_body_bytes,
            cors_origins: args.cors_origins.clone(),
            web_dir: args.web_dir.clone(),
            metrics: metrics.0,
        };
        let signal_limits = SignalLimits {
            max_event_bytes: args.max_event_bytes,
            max_rooms_per_connection: args.max_rooms_per_connection,
            events_per_second: args.socket_events_per_second,
            ..SignalLimits::default()
        };
        let connection_limits =
            ConnectionLimits::from_args(args, state.metrics.open_connections.clone());
        let sessions = vtp_sio::Config {
            connect_timeout: args.socket_auth_timeout,
            // Polling sessions are not TCP connections: the same cap for them.
            max_sessions: args.max_connections,
            // Apart from signed-in ones, so that they cannot crowd them out.
            max_unauthenticated: (args.max_connections / 4).max(1),
            max_unauthenticated_per_addr: args.max_unauthenticated_per_ip,
            ..vtp_sio::Config::default()
        };
        Ok(Server {
            state,
            http,
            signal_limits,
            sessions,
            connection_limits,
            grace: args.shutdown_grace,
            media,
            sfu_api: match args.role {
                NodeRole::All => args.sfu_secret.clone(),
                _ => None,
            },
            tls,
            tls_reloader,
            redirect,
            metrics: (metrics.1, args.metrics.metrics_token.clone()),
        })
    }

    /// Where `/metrics` listens when it has its own address.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.0.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// HTTPS as configured (its resolver and reload counters), if on.
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    /// Where the plain-HTTP redirect listens, if it does.
    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// One line per subsystem for the start-up log; never a secret.
    pub fn summary(&self, addr: SocketAddr) -> Vec<String> {
        let key = match self.state.tokens.key_source {
            KeySource::Configured => "from VTP_JWT_SECRET",
            KeySource::Generated => "generated and kept in the data directory",
            KeySource::LoadedFromDataDir => "kept in the data directory",
        };
        let cors = if self.http.cors_origins.is_empty() {
            "same origin only".to_string()
        } else {
            self.http.cors_origins.join(", ")
        };
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut lines = vec![
            format!(
                "{scheme}: listening on {scheme}://{addr} (API docs at {scheme}://{addr}/api/docs)"
            ),
            format!(
                "store: {}, schema version {}",
                self.state.store.description(),
                self.state.store.schema_version()
            ),
            format!(
                "auth: HS256 key {key}; access tokens {}s, refresh tokens {}s; registration {}",
                self.state.tokens.access_ttl.as_secs(),
                self.state.tokens.refresh_ttl.as_secs(),
                if self.state.policy.allow_registration {
                    "open"
                } else {
                    "closed"
                }
            ),
            format!(
                "http limits: {} connections ({} per address), body {} bytes within {}s, \
                 request head within {}s; cors {cors}",
                self.connection_limits.max_connections,
                self.connection_limits.max_connections_per_ip,
                self.http.max_body_bytes,
                self.connection_limits.body_read_timeout.as_secs(),
                self.connection_limits.header_read_timeout.as_secs()
            ),
            format!(
                "web app: {}",
                if self.http.web_dir.join("index.html").is_file() {
                    format!("served from {}", self.http.web_dir.display())
                } else {
                    format!(
                        "not built ({} has no index.html): scripts/run builds it",
                        self.http.web_dir.display()
                    )
                }
            ),
            format!(
                "sfu: {}; control API at /sfu/v1 {}",
                self.media.describe(),
                if self.sfu_api.is_some() {
                    "on (VTP_SFU_SECRET set)"
                } else {
                    "off"
                }
            ),
            format!("recordings: {}", self.state.recording_files.describe()),
            format!(
                "signalling: Socket.IO at /socket.io/, bus {}; reconnect grace {}s; \
                 {} events/s per connection, events up to {} bytes; sign-in within {}s, \
                 {} sessions not signed in ({} per address)",
                self.state.bus.describe(),
                self.state.hub.config().reconnect_grace.as_secs_f32(),
                self.signal_limits.events_per_second,
                self.signal_limits.max_event_bytes,
                self.sessions.connect_timeout.as_secs_f32(),
                self.sessions.max_unauthenticated,
                self.sessions.max_unauthenticated_per_addr
            ),
            self.state.exports.describe(),
        ];
        if let Some(tls) = &self.tls {
            lines.push(tls.describe());
        }
        let guard = if self.metrics.1.is_some() {
            ", bearer token required"
        } else {
            ""
        };
        lines.push(match (self.metrics_addr(), self.http.metrics.public) {
            (Some(at), _) => format!("metrics: http://{at}/metrics only{guard}"),
            (None, true) => format!("metrics: /metrics on the HTTP port{guard}"),
            (None, false) => "metrics: off (--metrics-bind, --metrics-token)".to_owned(),
        });
        if let Some(redirect) = self.redirect_addr() {
            lines.push(format!(
                "http: redirecting http://{redirect} to https on port {}",
                addr.port()
            ));
        }
        lines
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight
    /// requests finish (at most the grace period) and closes the store.
    pub async fn run(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let signal_engine = signalling::engine(
            self.state.clone(),
            self.signal_limits.clone(),
            self.sessions.clone(),
        );
        // The engine counts sessions per client address: the one the
        // per-address limits of the API use (trusted proxies included).
        let trusted = self.state.policy.trust_forwarded_for.clone();
        let signalling_routes = vtp_sio::router(signal_engine.clone()).layer(
            axum::middleware::map_request(move |mut req: axum::extract::Request| {
                let trusted = trusted.clone();
                async move {
                    if let Some(peer) = req
                        .extensions()
                        .get::<axum::extract::ConnectInfo<SocketAddr>>()
                        .map(|c| c.0.ip())
                    {
                        let ip = api::client_addr::client_ip(&trusted, peer, req.headers());
                        req.extensions_mut().insert(vtp_sio::ClientAddr(ip));
                    }
                    req
                }
            }),
        );
        let mut router = signalling_routes.merge(api::router(self.state.clone(), &self.http));
        if let Some(secret) = self.sfu_api.clone() {
            router = sfu_api::router(self.media.clone(), secret).merge(router);
        }
        // Every answer (app, API, docs, signalling, errors) carries them.
        let router = router.layer(axum::middleware::map_response(api::web::security_headers));
        // Around every route: requests by route template, status and time.
        let router = router.layer(axum::middleware::from_fn_with_state(
            self.state.clone(),
            api::metrics::http::track,
        ));
        let maintenance = tokio::spawn(maintenance(self.state.clone()));
        // Uploads what is ready (also what an earlier run left), then waits for more.
        let uploads = tokio::spawn(
            self.state
                .recording_files
                .clone()
                .run_uploads(self.state.store.clone()),
        );
        let reloader = self.tls_reloader.take().map(tokio::spawn);
        // The redirect listener stops with the main one.
        let (stop_redirect, redirect_stopped) = tokio::sync::watch::channel(false);
        let private_metrics = self.metrics.0.take().map(|listener| {
            let app = api::metrics::private_router(self.state.clone(), self.metrics.1.clone());
            let mut stopped = stop_redirect.subscribe();
            // Its own small cap: a flood of the public port does not keep
            // Prometheus out, nor scrapers the classes.
            let limits = ConnectionLimits {
                max_connections: METRICS_CONNECTIONS,
                open: Arc::default(),
                ..self.connection_limits.clone()
            };
            tokio::spawn(serve::serve(listener, app, limits, async move {
                let _ = stopped.wait_for(|s| *s).await;
            }))
        });
        let redirect = match (self.redirect.take(), listener.local_addr()) {
            (Some(plain), Ok(https)) => Some(tokio::spawn(serve::serve(
                plain,
                tls::redirect::router(https.port(), self.tls.as_ref().and_then(Tls::challenges)),
                self.connection_limits.clone(),
                async move {
                    let mut stopped = redirect_stopped;
                    let _ = stopped.wait_for(|s| *s).await;
                },
            ))),
            _ => None,
        };
        serve::serve_with_grace(
            listener,
            router,
            self.connection_limits.clone(),
            self.tls.as_ref().map(Tls::options),
            self.grace,
            async move {
                shutdown.await;
                let _ = stop_redirect.send(true);
                // Signalling connections are long-lived: close them so that only
                // real in-flight requests hold the shutdown.
                signal_engine.close_all(Duration::from_secs(5)).await;
            },
        )
        .await;
        if let Some(redirect) = redirect {
            // Redirects are answered at once: nothing to wait for long.
            if tokio::time::timeout(Duration::from_secs(1), redirect)
                .await
                .is_err()
            {
                tracing::debug!("redirect listener still draining at shutdown");
            }
        }
        if let Some(metrics) = private_metrics {
            // A scrape ends at once: nothing to wait for long.
            let _ = tokio::time::timeout(Duration::from_secs(1), metrics).await;
        }
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        maintenance.abort();
        uploads.abort();
        self.state.hub.shutdown().await;
        self.media.shutdown().await;
        self.state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Recordings a crash left in `recording` or `finalizing`: their files are
/// cut after the last whole frame and re-indexed, and they become `ready`
/// (something plays) or `failed` — never left dangling.
async fn repair_recordings(store: &Store, dir: &std::path::Path) {
    let mut stale = Vec::new();
    for state in [RecordingState::Recording, RecordingState::Finalizing] {
        match store.recordings_in_state(state).await {
            Ok(rows) => stale.extend(rows),
            Err(e) => tracing::error!(error = %e, "cannot list recordings to repair"),
        }
    }
    for row in stale {
        let path = dir.join(row.id.to_string());
        let repaired =
            tokio::task::spawn_blocking(move || crate::recording::repair::repair_recording(&path))
                .await;
        let Ok(repaired) = repaired else {
            tracing::error!(recording_id = %row.id, "recording repair panicked");
            continue;
        };
        let state = if repaired.playable {
            RecordingState::Ready
        } else {
            RecordingState::Failed
        };
        let outcome = FinishedRecording {
            stopped_at: chrono::Utc::now(),
            state,
            bytes: repaired.bytes,
            duration_ms: repaired.duration_ms,
            manifest: repaired
                .manifest
                .as_ref()
                .and_then(|m| serde_json::to_value(m).ok()),
            error: repaired.error,
        };
        let result = store.finish_recording(row.id, &outcome).await;
        match result {
            Ok(_) => {
                tracing::warn!(recording_id = %row.id, state = state.as_str(), "recording repaired after a crash")
            }
            Err(e) => {
                tracing::error!(error = %e, recording_id = %row.id, "could not store the repaired recording")
            }
        }
    }
}

/// The audit log (with its retention running) and the webhook outbox
/// (with its deliverer running), from `--audit-*` and `--webhook-*`.
fn audit_and_webhooks(args: &ServeArgs, store: &Store) -> (Audit, Webhooks) {
    let audit = Audit::new(store.clone());
    audit.spawn_retention(AuditRetention {
        max_age: args.audit.audit_retention,
        max_events: args.audit.audit_max_events,
    });
    let hooks = &args.webhooks;
    let webhooks = Webhooks::start(
        store.clone(),
        DeliveryConfig {
            timeout: hooks.webhook_timeout,
            backoff: hooks.webhook_backoff,
            max_backoff: hooks.webhook_max_backoff,
            max_attempts: hooks.webhook_max_attempts,
            allow_private: hooks.webhook_allow_private_targets,
            log_retention: hooks.webhook_log_retention,
        },
    );
    (audit, webhooks)
}

fn export_queue_config(
    args: &ServeArgs,
    recording_files: &Arc<RecordingFiles>,
    webhooks: &Webhooks,
) -> QueueConfig {
    QueueConfig {
        settings: ExportSettings {
            ffmpeg: args.exports.run.ffmpeg.clone(),
            threads: args.exports.run.export_threads,
        },
        max_concurrent: args.exports.max_concurrent_exports as usize,
        max_queued: args.exports.max_queued_exports,
        files: recording_files.clone(),
        exports_dir: args.store.data_dir.join("exports"),
        webhooks: webhooks.clone(),
    }
}

/// Recordings' storage from the configuration: the data directory, and
/// the bucket when `--recording-s3-url` is set.
fn recording_files(args: &ServeArgs, ready: ReadySignal) -> anyhow::Result<RecordingFiles> {
    let files = recording_files_from(&args.recording_storage, &args.store.data_dir, ready)?;
    files.remove_leftover_downloads();
    Ok(files)
}

/// Recordings' storage for `vtp serve` and `vtp recording export` alike.
pub fn recording_files_from(
    s3: &RecordingStorageArgs,
    data_dir: &std::path::Path,
    ready: ReadySignal,
) -> anyhow::Result<RecordingFiles> {
    let bucket = s3.recording_s3_url.as_ref().map(|url| BucketSettings {
        url: url.clone(),
        endpoint: s3.recording_s3_endpoint.clone(),
        region: s3.recording_s3_region.clone(),
        access_key_id: s3.recording_s3_access_key_id.clone(),
        secret_access_key: s3
            .recording_s3_secret_access_key
            .as_ref()
            .map(|s| s.expose().to_owned()),
        allow_http: s3.recording_s3_allow_http,
        presign_downloads: s3.recording_s3_presign,
    });
    RecordingFiles::new(
        data_dir.join("recordings"),
        bucket.as_ref(),
        s3.recording_upload_retry,
        ready,
    )
    .context("recording storage")
}

/// The SFU an `all` or `api` node uses: started here, or reached over HTTP.
fn media_for(args: &ServeArgs) -> anyhow::Result<Arc<dyn SfuControl>> {
    match args.role {
        NodeRole::Api => {
            let (Some(url), Some(secret)) = (&args.sfu_url, &args.sfu_secret) else {
                anyhow::bail!(
                    "--role api needs --sfu-url and --sfu-secret (VTP_SFU_URL, VTP_SFU_SECRET)"
                );
            };
            Ok(Arc::new(RemoteSfu::new(url, secret.clone())?))
        }
        NodeRole::All | NodeRole::Sfu => Ok(Arc::new(start_driver(args)?)),
    }
}

/// Starts the media driver of this node.
pub fn start_driver(args: &ServeArgs) -> anyhow::Result<vtp_sfu_driver::SfuHandle> {
    use crate::config::RtcTcpBind;
    use vtp_sfu_driver::{TcpBind, TcpLimits};
    let tcp = match args.rtc_tcp_bind {
        None => TcpBind::SameAsUdp,
        Some(RtcTcpBind::Off) => TcpBind::Off,
        Some(RtcTcpBind::Addr(addr)) => TcpBind::Addr(addr),
    };
    let mut driver = DriverConfig {
        bind: args.rtc_bind,
        announced_ips: args.announced_ip.clone(),
        tcp,
        tcp_limits: TcpLimits {
            max_connections: args.rtc_tcp_max_connections,
            max_connections_per_ip: args.rtc_tcp_max_connections_per_ip,
            ..TcpLimits::default()
        },
        initial_bandwidth_estimate_bps: (args.initial_bandwidth_kbps > 0)
            .then(|| args.initial_bandwidth_kbps.saturating_mul(1000)),
        udp_batching: args.sfu_udp_batching.into(),
        ..DriverConfig::default()
    };
    if let Some(workers) = args.sfu_workers {
        driver.workers = workers.max(1);
    }
    // The driver's start-up line lists every candidate it announces.
    let sfu = SfuDriver::start(driver).with_context(|| {
        format!(
            "cannot start the SFU on udp {} (tcp: --rtc-tcp-bind)",
            args.rtc_bind
        )
    })?;
    // Clients elsewhere would reach the page but never the media.
    if !args.bind.ip().is_loopback() && sfu.announces_only_loopback() {
        tracing::warn!(
            http = %args.bind,
            candidates = %vtp_sfu_driver::describe_candidates(sfu.candidates()),
            "HTTP is reachable from other hosts but the SFU announces only loopback \
             addresses: media will not flow; set --announced-ip (VTP_ANNOUNCED_IP) or bind \
             --rtc-bind to 0.0.0.0"
        );
    }
    Ok(sfu)
}

/// Who may read `/metrics` (docs/deploy.md), and its own listener when
/// `--metrics-bind` is set.
async fn metrics_access(
    args: &ServeArgs,
) -> anyhow::Result<(api::metrics::MetricsAccess, Option<TcpListener>)> {
    let flags = &args.metrics;
    if let Some(token) = &flags.metrics_token
        && token.expose().len() < MIN_METRICS_TOKEN
    {
        anyhow::bail!(
            "--metrics-token (VTP_METRICS_TOKEN) must be at least {MIN_METRICS_TOKEN} characters"
        );
    }
    let access = api::metrics::MetricsAccess::from_flags(
        args.bind,
        flags.metrics_bind,
        flags.metrics_token.clone(),
    );
    if let Some(warning) = access.warning(flags.metrics_bind) {
        tracing::warn!("{warning}");
    }
    let listener = match flags.metrics_bind {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (--metrics-bind)"))?,
        ),
        None => None,
    };
    Ok((access, listener))
}

/// Housekeeping that keeps tables from growing: expired refresh tokens.
async fn maintenance(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match state
            .store
            .delete_expired_refresh_tokens(chrono::Utc::now())
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "expired refresh tokens removed"),
            Err(e) => tracing::warn!(error = %e, "refresh token clean-up failed"),
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested: finishing in-flight requests");
}
