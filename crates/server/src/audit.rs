//! The audit log: every security-relevant event is one log line (target
//! `audit`, with its stable `event` name as a field) and one stored row
//! that admins read and export (`api::audit`). The names are a contract
//! (docs/operations.md, "Audit log"): add new ones, never rename.
//!
//! Writing a row never fails the action it records: a store error is
//! logged, and the log line is there either way.

use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;
use vtp_store::{AuditEvent, Store, User};

/// The events, by their stable names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditKind {
    SignIn,
    SignInFailed,
    LockedOut,
    SecondFactorFailed,
    PasswordChanged,
    RefreshReused,
    UserCreated,
    UserRoleChanged,
    UserDisabled,
    UserEnabled,
    UserDeleted,
    UserPasswordReset,
    User2faReset,
    ParticipantRemoved,
    RoomClosed,
    RecordingDownloaded,
    RecordingDeleted,
    WebhookCreated,
    WebhookDeleted,
    WebhookDisabled,
    AuditExported,
}

impl AuditKind {
    pub const ALL: [AuditKind; 21] = [
        AuditKind::SignIn,
        AuditKind::SignInFailed,
        AuditKind::LockedOut,
        AuditKind::SecondFactorFailed,
        AuditKind::PasswordChanged,
        AuditKind::RefreshReused,
        AuditKind::UserCreated,
        AuditKind::UserRoleChanged,
        AuditKind::UserDisabled,
        AuditKind::UserEnabled,
        AuditKind::UserDeleted,
        AuditKind::UserPasswordReset,
        AuditKind::User2faReset,
        AuditKind::ParticipantRemoved,
        AuditKind::RoomClosed,
        AuditKind::RecordingDownloaded,
        AuditKind::RecordingDeleted,
        AuditKind::WebhookCreated,
        AuditKind::WebhookDeleted,
        AuditKind::WebhookDisabled,
        AuditKind::AuditExported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::SignIn => "auth.sign_in",
            AuditKind::SignInFailed => "auth.sign_in_failed",
            AuditKind::LockedOut => "auth.locked_out",
            AuditKind::SecondFactorFailed => "auth.2fa_failed",
            AuditKind::PasswordChanged => "auth.password_changed",
            AuditKind::RefreshReused => "auth.refresh_reused",
            AuditKind::UserCreated => "user.created",
            AuditKind::UserRoleChanged => "user.role_changed",
            AuditKind::UserDisabled => "user.disabled",
            AuditKind::UserEnabled => "user.enabled",
            AuditKind::UserDeleted => "user.deleted",
            AuditKind::UserPasswordReset => "user.password_reset",
            AuditKind::User2faReset => "user.2fa_reset",
            AuditKind::ParticipantRemoved => "room.participant_removed",
            AuditKind::RoomClosed => "room.closed",
            AuditKind::RecordingDownloaded => "recording.downloaded",
            AuditKind::RecordingDeleted => "recording.deleted",
            AuditKind::WebhookCreated => "webhook.created",
            AuditKind::WebhookDeleted => "webhook.deleted",
            AuditKind::WebhookDisabled => "webhook.disabled",
            AuditKind::AuditExported => "audit.exported",
        }
    }

    pub fn parse(name: &str) -> Option<AuditKind> {
        AuditKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One event to record. Built with [`AuditEntry::new`] and the `with_*`
/// setters; never holds a secret (no passwords, tokens or codes).
#[derive(Clone, Debug)]
pub struct AuditEntry {
    kind: AuditKind,
    actor_id: Option<Uuid>,
    actor: Option<String>,
    target: Option<String>,
    address: Option<String>,
    detail: Option<Value>,
}

/// The longest e-mail or target kept: what a failed sign-in typed is the
/// caller's text.
const MAX_FIELD_CHARS: usize = 320;

fn bounded(text: &str) -> String {
    text.chars().take(MAX_FIELD_CHARS).collect()
}

impl AuditEntry {
    pub fn new(kind: AuditKind) -> Self {
        AuditEntry {
            kind,
            actor_id: None,
            actor: None,
            target: None,
            address: None,
            detail: None,
        }
    }

    /// The account that acted.
    pub fn by(mut self, user: &User) -> Self {
        self.actor_id = Some(user.id);
        self.actor = Some(bounded(&user.email));
        self
    }

    /// Who acted, when only their id is known (and maybe what they typed).
    pub fn by_id(mut self, id: Option<Uuid>, email: Option<&str>) -> Self {
        self.actor_id = id;
        self.actor = email.map(bounded);
        self
    }

    /// What it was done to, as `kind:id` (`user:…`, `room:…`, `recording:…`).
    pub fn on(mut self, kind: &str, id: impl std::fmt::Display) -> Self {
        self.target = Some(bounded(&format!("{kind}:{id}")));
        self
    }

    pub fn from_address(mut self, address: impl std::fmt::Display) -> Self {
        self.address = Some(bounded(&address.to_string()));
        self
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// Where audit events go. Cheap to clone. Without a store (tests of the
/// room logic, the default) events are logged only.
#[derive(Clone, Debug, Default)]
pub struct Audit {
    store: Option<Store>,
}

/// How long and how many events are kept.
#[derive(Clone, Copy, Debug)]
pub struct AuditRetention {
    pub max_age: Duration,
    pub max_events: u64,
}

impl Audit {
    pub fn new(store: Store) -> Self {
        Audit { store: Some(store) }
    }

    /// Logs the event and stores it.
    pub async fn record(&self, entry: AuditEntry) {
        let event = AuditEvent {
            id: Uuid::new_v4(),
            at: Utc::now(),
            event: entry.kind.as_str().to_string(),
            actor_id: entry.actor_id,
            actor: entry.actor,
            target: entry.target,
            address: entry.address,
            detail: entry.detail,
        };
        tracing::info!(
            target: "audit",
            event = %event.event,
            actor_id = ?event.actor_id,
            actor = ?event.actor,
            on = ?event.target,
            address = ?event.address,
            detail = ?event.detail.as_ref().map(|d| d.to_string()),
            "audit event"
        );
        if let Some(store) = &self.store
            && let Err(e) = store.insert_audit_event(&event).await
        {
            tracing::error!(error = %e, event = %event.event, "could not store an audit event");
        }
    }

    /// Records without waiting: for code that must not await the store
    /// (the order of two such events is the order they were stored).
    pub fn record_later(&self, entry: AuditEntry) {
        let audit = self.clone();
        tokio::spawn(async move { audit.record(entry).await });
    }

    /// Applies the retention now and then (hourly), until the process ends.
    pub fn spawn_retention(&self, retention: AuditRetention) {
        let Some(store) = self.store.clone() else {
            return;
        };
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                let age =
                    chrono::Duration::from_std(retention.max_age).unwrap_or(chrono::Duration::MAX);
                let older_than = Utc::now()
                    .checked_sub_signed(age)
                    .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
                match store
                    .prune_audit_events(older_than, retention.max_events)
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(removed = n, "audit events past their retention removed")
                    }
                    Err(e) => tracing::warn!(error = %e, "could not prune the audit log"),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for kind in AuditKind::ALL {
            assert!(seen.insert(kind.as_str()), "{} twice", kind.as_str());
            assert_eq!(AuditKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AuditKind::parse("auth.nothing"), None);
    }

    #[test]
    fn caller_text_is_bounded() {
        let long = "x".repeat(10_000);
        let entry = AuditEntry::new(AuditKind::SignInFailed).by_id(None, Some(&long));
        assert_eq!(
            entry.actor.map(|a| a.chars().count()),
            Some(MAX_FIELD_CHARS)
        );
    }
}
