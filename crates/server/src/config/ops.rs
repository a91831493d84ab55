//! Settings of the audit log and of webhooks (docs/operations.md).

use std::time::Duration;

use clap::Args;

use super::parse_duration;

#[derive(Clone, Debug, Args)]
pub struct AuditArgs {
    /// Audit events older than this are removed (hourly).
    #[arg(long, env = "VTP_AUDIT_RETENTION", default_value = "365d", value_parser = parse_duration)]
    pub audit_retention: Duration,
    /// At most this many audit events are kept (the oldest go first).
    #[arg(long, env = "VTP_AUDIT_MAX_EVENTS", default_value_t = 1_000_000)]
    pub audit_max_events: u64,
}

#[derive(Clone, Debug, Args)]
pub struct WebhookArgs {
    /// Webhook endpoints an admin may register.
    #[arg(long, env = "VTP_WEBHOOK_MAX_ENDPOINTS", default_value_t = 20)]
    pub webhook_max_endpoints: u32,
    /// One delivery attempt's time limit, connecting included.
    #[arg(long, env = "VTP_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub webhook_timeout: Duration,
    /// The wait before the first retry of a failed delivery; each next one doubles.
    #[arg(long, env = "VTP_WEBHOOK_BACKOFF", default_value = "10s", value_parser = parse_duration)]
    pub webhook_backoff: Duration,
    /// The longest wait between two attempts.
    #[arg(long, env = "VTP_WEBHOOK_MAX_BACKOFF", default_value = "1h", value_parser = parse_duration)]
    pub webhook_max_backoff: Duration,
    /// Attempts before a delivery is given up and its endpoint turned off
    /// (the default, with the back-off above, is about a day).
    #[arg(long, env = "VTP_WEBHOOK_MAX_ATTEMPTS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub webhook_max_attempts: u32,
    /// Let endpoints be loopback or private addresses (off: such endpoints
    /// are refused, a guard against requests into the server's own network).
    #[arg(long, env = "VTP_WEBHOOK_ALLOW_PRIVATE_TARGETS")]
    pub webhook_allow_private_targets: bool,
    /// How long finished deliveries stay in each endpoint's log.
    #[arg(long, env = "VTP_WEBHOOK_LOG_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub webhook_log_retention: Duration,
}
