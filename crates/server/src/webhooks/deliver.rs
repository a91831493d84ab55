//! The deliverer: sends the head of each enabled endpoint's outbox queue
//! (so each endpoint gets its events in order), all endpoints at once,
//! then looks again; when nothing is due it sleeps until the next retry
//! or until woken. Every attempt has a time limit; the answer's body is
//! never read (only its status counts), and redirects are not followed.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use vtp_store::{AttemptOutcome, DueDelivery, Store};

use super::sign::{SIGNATURE_HEADER, signature};
use super::target;

/// How deliveries are made (`--webhook-*`).
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// One attempt's limit, connection included.
    pub timeout: Duration,
    /// The first retry's delay; each next one doubles, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Attempts before a delivery is given up and its endpoint turned off.
    pub max_attempts: u32,
    /// Lets endpoints resolve to loopback and private addresses.
    pub allow_private: bool,
    /// How long finished deliveries stay in the log.
    pub log_retention: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            timeout: Duration::from_secs(10),
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(3600),
            max_attempts: 12,
            allow_private: false,
            log_retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl DeliveryConfig {
    /// The wait after the `attempts`-th failed attempt (1-based).
    pub fn backoff_after(&self, attempts: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// The longest the deliverer sleeps without looking (a safety net: wake-ups
/// come from new rows and from the next retry's time).
const IDLE_LOOK: Duration = Duration::from_secs(30);
/// Finished deliveries are pruned this often.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub(super) async fn run(store: Store, config: DeliveryConfig, wake: Arc<Notify>) {
    let client = match reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(target::resolver(config.allow_private))
        .user_agent(concat!("vtp-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "webhooks are off: cannot build the HTTP client");
            return;
        }
    };
    let mut last_prune = tokio::time::Instant::now();
    loop {
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = tokio::time::Instant::now();
            prune(&store, &config).await;
        }
        let due = match store.due_webhook_deliveries(Utc::now()).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the webhook outbox");
                Vec::new()
            }
        };
        if !due.is_empty() {
            let attempts = due
                .into_iter()
                .map(|d| attempt(&store, &client, &config, d));
            futures_util::future::join_all(attempts).await;
            continue;
        }
        let wait = match store.next_webhook_attempt().await {
            Ok(Some(at)) => (at - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(IDLE_LOOK),
            _ => IDLE_LOOK,
        };
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn prune(store: &Store, config: &DeliveryConfig) {
    let age = chrono::Duration::from_std(config.log_retention).unwrap_or(chrono::Duration::MAX);
    let older_than = Utc::now()
        .checked_sub_signed(age)
        .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
    if let Err(e) = store.prune_webhook_deliveries(older_than).await {
        tracing::warn!(error = %e, "cannot prune the webhook delivery log");
    }
}

async fn attempt(
    store: &Store,
    client: &reqwest::Client,
    config: &DeliveryConfig,
    due: DueDelivery,
) {
    let delivery = &due.delivery;
    let result = send(client, config, &due).await;
    let attempts = delivery.attempts.saturating_add(1);
    let now = Utc::now();
    let outcome = match result {
        Ok(status) if (200..300).contains(&status) => AttemptOutcome::Delivered { status },
        failed => {
            let (status, error) = match failed {
                Ok(status) => (Some(status), format!("answered {status}")),
                Err(error) => (None, error),
            };
            if attempts >= config.max_attempts {
                tracing::warn!(
                    endpoint_id = %delivery.endpoint_id, delivery_id = delivery.id, attempts, %error,
                    "webhook delivery given up; endpoint turned off"
                );
                AttemptOutcome::GiveUp { status, error }
            } else {
                let wait = config.backoff_after(attempts);
                let retry_at =
                    now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                tracing::debug!(
                    endpoint_id = %delivery.endpoint_id, delivery_id = delivery.id, attempts, %error,
                    retry_in_ms = wait.as_millis() as u64, "webhook delivery failed; will retry"
                );
                AttemptOutcome::Retry {
                    status,
                    error,
                    retry_at,
                }
            }
        }
    };
    if let Err(e) = store
        .record_webhook_attempt(delivery.id, &outcome, now)
        .await
    {
        tracing::error!(error = %e, delivery_id = delivery.id, "cannot record a webhook attempt");
    }
}

/// One POST; the status it got, or why there was none. The answer's body is not read.
async fn send(
    client: &reqwest::Client,
    config: &DeliveryConfig,
    due: &DueDelivery,
) -> Result<u16, String> {
    // Checked again on every attempt: the rules may have changed since it was registered.
    let url = target::check_url(&due.url, config.allow_private)?;
    let delivery = &due.delivery;
    let timestamp = Utc::now().timestamp();
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            SIGNATURE_HEADER,
            signature(&due.secret, timestamp, &delivery.body),
        )
        .header("vtp-event", delivery.event.as_str())
        .header("vtp-event-id", delivery.event_id.to_string())
        .header("vtp-delivery", delivery.id.to_string())
        .body(delivery.body.clone())
        .send()
        .await
        .map_err(describe)?;
    Ok(response.status().as_u16())
}

/// A failed request in plain words, without the URL (it may hold a token in its path).
fn describe(err: reqwest::Error) -> String {
    let err = err.without_url();
    if err.is_timeout() {
        "timed out".into()
    } else if err.is_connect() {
        format!("cannot connect: {err}")
    } else {
        err.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let config = DeliveryConfig {
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(60),
            ..DeliveryConfig::default()
        };
        assert_eq!(config.backoff_after(1), Duration::from_secs(10));
        assert_eq!(config.backoff_after(2), Duration::from_secs(20));
        assert_eq!(config.backoff_after(3), Duration::from_secs(40));
        assert_eq!(config.backoff_after(4), Duration::from_secs(60));
        assert_eq!(config.backoff_after(99), Duration::from_secs(60));
    }
}
