//! `vtp serve --role sfu`: a media-only node. It runs the SFU driver and
//! serves its control API (`/sfu/v1`, docs/protocol.md, "SFU control API") to API nodes, plus
//! `/health` and `/ready`; no store, no accounts, no signalling.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use vtp_sfu_driver::{SfuControl, SfuHandle};

use crate::config::{Secret, ServeArgs};
use crate::serve::{self, ConnectionLimits};
use crate::server::start_driver;
use crate::sfu_api;
use crate::tls::Tls;

/// A configured SFU node, ready to run.
pub struct SfuNode {
    media: SfuHandle,
    secret: Secret,
    limits: ConnectionLimits,
    grace: Duration,
    tls: Option<Tls>,
    /// Keeps the certificate current (file reloads or ACME); made in
    /// `build` so that no SIGHUP is missed, spawned by `run`.
    tls_reloader: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl SfuNode {
    /// Starts the driver. The control API needs `VTP_SFU_SECRET`: an SFU
    /// node without one would let anyone on the network drive it.
    pub fn build(args: &ServeArgs) -> anyhow::Result<SfuNode> {
        let Some(secret) = args.sfu_secret.clone() else {
            anyhow::bail!(
                "--role sfu needs --sfu-secret (VTP_SFU_SECRET), shared with the API nodes"
            );
        };
        crate::config::check_sfu_secret(&secret).map_err(anyhow::Error::msg)?;
        if args.tls.http_redirect_bind.is_some() || !args.tls.acme_domain.is_empty() {
            anyhow::bail!(
                "--http-redirect-bind and --acme-domain are for browser-facing nodes; \
                 --role sfu is called by API nodes only (give it --tls-cert/--tls-key)"
            );
        }
        let tls = Tls::from_args(&args.tls, &args.store.data_dir)?;
        let tls_reloader = tls.as_ref().map(Tls::background);
        Ok(SfuNode {
            tls,
            tls_reloader,
            media: start_driver(args)?,
            secret,
            limits: ConnectionLimits::from_args(args, Default::default()),
            grace: args.shutdown_grace,
        })
    }

    /// The driver, for tests.
    pub fn media(&self) -> &SfuHandle {
        &self.media
    }

    /// Start-up log lines; never the secret.
    pub fn summary(&self, addr: SocketAddr) -> Vec<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut lines = vec![
            format!(
                "role: sfu node; control API at {scheme}://{addr}/sfu/v1 (bearer VTP_SFU_SECRET)"
            ),
            format!("sfu: {}", self.media.describe()),
        ];
        lines.extend(self.tls.as_ref().map(Tls::describe));
        lines
    }

    /// Serves until `shutdown` completes; then stops the driver, which ends
    /// the API nodes' event streams, and lets in-flight calls finish (at
    /// most the grace period).
    pub async fn run(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let sfu: Arc<dyn SfuControl> = Arc::new(self.media.clone());
        let app = sfu_api::node_router(sfu, self.secret.clone());
        let media = self.media.clone();
        let reloader = self.tls_reloader.take().map(tokio::spawn);
        serve::serve_with_grace(
            listener,
            app,
            self.limits.clone(),
            self.tls.as_ref().map(Tls::options),
            self.grace,
            async move {
                shutdown.await;
                // Ends the API nodes' event streams, which would hold the drain.
                media.shutdown().await;
            },
        )
        .await;
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        self.media.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    }
}
