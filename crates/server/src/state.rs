//! What the edges (the HTTP API and signalling) share: the handles
//! `server` wires together. It sits under the edges and above everything
//! it holds, so nothing below the edges may use it.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vtp_store::{Store, User};

use crate::audit::Audit;
use crate::auth::password::Passwords;
use crate::auth::sealing::Sealer;
use crate::auth::tokens::{Scope, TokenIssuer};
use crate::auth::watch::AccountWatch;
use crate::auth::{self, AuthError};
use crate::bus::Bus;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::recording::export::ExportQueue;
use crate::recording::storage::RecordingFiles;
use crate::rooms::RoomHub;
use crate::webhooks::Webhooks;

/// Cheap to clone: one `Arc` around [`AppInner`].
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub store: Store,
    pub tokens: TokenIssuer,
    /// Seals two-factor secrets before they are stored.
    pub sealer: Sealer,
    pub passwords: Passwords,
    /// Sign-in attempts per client address.
    pub login_by_ip: RateLimiter,
    /// Failed sign-ins per (account, client address): the lockout.
    pub login_by_account: RateLimiter,
    /// Failed sign-ins per account from anywhere: past it, only addresses
    /// that have not failed for the account lately may try (a slow-down
    /// that a stranger cannot turn into the owner's lockout).
    pub login_by_account_total: RateLimiter,
    /// Second-factor code attempts per account (failures only).
    pub second_factor: RateLimiter,
    /// Accounts an administrator changed (role, disabled, deleted), for
    /// live connections to notice.
    pub accounts: AccountWatch,
    pub policy: Policy,
    /// Room events to connections.
    pub bus: Arc<dyn Bus>,
    /// The live rooms.
    pub hub: Arc<RoomHub>,
    /// Counters exported at `/metrics`.
    pub metrics: Metrics,
    /// `<data-dir>/recordings`: one directory per recording, named by its id.
    pub recordings_dir: PathBuf,
    /// Exports of recordings to one file.
    pub exports: Arc<ExportQueue>,
    /// Recordings' files on disk or in the bucket (downloads, deletion).
    pub recording_files: Arc<RecordingFiles>,
    /// Security-relevant events: logged and stored.
    pub audit: Audit,
    /// Events to the endpoints admins registered.
    pub webhooks: Webhooks,
    /// What admins may register as webhook endpoints.
    pub webhook_policy: WebhookPolicy,
}

/// Limits on webhook endpoints (`--webhook-max-endpoints`,
/// `--webhook-allow-private-targets`).
#[derive(Clone, Copy, Debug)]
pub struct WebhookPolicy {
    pub max_endpoints: u32,
    pub allow_private: bool,
}

/// Settings that change what the API allows.
#[derive(Clone, Debug)]
pub struct Policy {
    pub allow_registration: bool,
    /// Reverse proxies whose `X-Forwarded-For` is believed (see
    /// `api::client_addr`).
    pub trust_forwarded_for: Vec<ipnet::IpNet>,
    /// Upper bound an owner may set for `maxParticipants`.
    pub max_room_participants: u32,
    /// Roles that must sign in with two factors (`--require-2fa-for`).
    pub require_2fa_for: Vec<vtp_store::Role>,
}

/// An account's failures from all addresses together may reach this many
/// times its per-address budget before the slow-down starts.
const ACCOUNT_TOTAL_FACTOR: u32 = 5;

/// The parts [`AppState::new`] assembles.
pub struct AppParts {
    pub store: Store,
    pub tokens: TokenIssuer,
    pub sealer: Sealer,
    pub passwords: Passwords,
    pub login_rate_per_ip: u32,
    pub login_rate_per_account: u32,
    pub policy: Policy,
    pub bus: Arc<dyn Bus>,
    pub hub: Arc<RoomHub>,
    pub recordings_dir: PathBuf,
    pub exports: Arc<ExportQueue>,
    pub recording_files: Arc<RecordingFiles>,
    pub audit: Audit,
    pub webhooks: Webhooks,
    pub webhook_policy: WebhookPolicy,
}

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        AppState(Arc::new(AppInner {
            store: parts.store,
            tokens: parts.tokens,
            sealer: parts.sealer,
            passwords: parts.passwords,
            login_by_ip: RateLimiter::new(parts.login_rate_per_ip, Duration::from_secs(60)),
            login_by_account: RateLimiter::new(
                parts.login_rate_per_account,
                Duration::from_secs(15 * 60),
            ),
            login_by_account_total: RateLimiter::new(
                parts
                    .login_rate_per_account
                    .saturating_mul(ACCOUNT_TOTAL_FACTOR),
                Duration::from_secs(15 * 60),
            ),
            // Five wrong codes, then one try a minute: a million codes
            // cannot be walked through.
            second_factor: RateLimiter::new(5, Duration::from_secs(5 * 60)),
            accounts: AccountWatch::default(),
            policy: parts.policy,
            bus: parts.bus,
            hub: parts.hub,
            metrics: Metrics::default(),
            recordings_dir: parts.recordings_dir,
            exports: parts.exports,
            recording_files: parts.recording_files,
            audit: parts.audit,
            webhooks: parts.webhooks,
            webhook_policy: parts.webhook_policy,
        }))
    }
}

impl AppState {
    /// Ends the account's live sessions after its tokens were revoked in
    /// the store: open connections notice at their next event, and every
    /// room the account is in takes it out at once, saying `reason`.
    pub async fn end_live_sessions(&self, user_id: uuid::Uuid, reason: &str) {
        self.accounts.changed(user_id);
        self.hub.revoke_user(user_id, reason).await;
    }

    /// The user an access token stands for, if it is still good
    /// ([`auth::authenticate`]).
    pub async fn authenticate(&self, token: &str) -> Result<User, AuthError> {
        auth::authenticate(&self.store, &self.tokens, token).await
    }

    /// [`auth::authenticate_scoped`]: a token of one of the `allowed` scopes.
    pub async fn authenticate_scoped(
        &self,
        token: &str,
        allowed: &[Option<Scope>],
    ) -> Result<User, AuthError> {
        auth::authenticate_scoped(&self.store, &self.tokens, token, allowed).await
    }
}

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}
