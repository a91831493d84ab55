//! What every request handler shares.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use vtp_store::Store;

use crate::auth::password::Passwords;
use crate::auth::rate_limit::RateLimiter;
use crate::auth::tokens::TokenIssuer;

/// Cheap to clone: one `Arc` around [`AppInner`].
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub store: Store,
    pub tokens: TokenIssuer,
    pub passwords: Passwords,
    /// Sign-in attempts per client address.
    pub login_by_ip: RateLimiter,
    /// Sign-in attempts per e-mail, wherever they come from.
    pub login_by_account: RateLimiter,
    pub policy: Policy,
}

/// Settings that change what the API allows.
#[derive(Clone, Debug)]
pub struct Policy {
    pub allow_registration: bool,
    pub trust_forwarded_for: bool,
    /// Upper bound an owner may set for `maxParticipants`.
    pub max_room_participants: u32,
}

impl AppState {
    pub fn new(
        store: Store,
        tokens: TokenIssuer,
        passwords: Passwords,
        login_rate_per_ip: u32,
        login_rate_per_account: u32,
        policy: Policy,
    ) -> Self {
        AppState(Arc::new(AppInner {
            store,
            tokens,
            passwords,
            login_by_ip: RateLimiter::new(login_rate_per_ip, Duration::from_secs(60)),
            login_by_account: RateLimiter::new(
                login_rate_per_account,
                Duration::from_secs(15 * 60),
            ),
            policy,
        }))
    }
}

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}
