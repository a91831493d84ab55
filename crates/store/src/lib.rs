//! Durable state of VTP: users, refresh tokens, rooms, live sessions with
//! their participants and chat, recordings and their exports.
//!
//! One interface, [`Store`], over two backends: embedded SQLite (the default,
//! a single file in the data directory, WAL mode) and PostgreSQL. Both run the
//! same queries; only the migrations are written per dialect, kept column for
//! column in step (`migrations/sqlite`, `migrations/postgres`).
//!
//! What this crate does not know: HTTP, tokens' cryptography, passwords in the
//! clear, who may do what. It stores what it is given, enforces uniqueness
//! and referential integrity, and reports violations as [`StoreError`]s that
//! the caller maps to its own error codes.

mod audit;
mod backup;
mod error;
mod exports;
mod members;
mod model;
mod pool;
mod recording_storage;
mod recordings;
mod rooms;
mod schedules;
mod sessions;
mod timings;
mod tokens;
mod two_factor;
mod users;
mod webhooks;

#[cfg(feature = "testing")]
pub mod testing;

pub use audit::{AuditEvent, AuditQuery};
pub use backup::{BackupSummary, inspect_backup, sqlite_file};
pub use error::StoreError;
pub use exports::{ExportLayout, ExportState, RecordingExport};
pub use model::*;
pub use pool::{Backend, Store, StoreOptions};
pub use recording_storage::{RecordingStorage, StorageLocation};
pub use schedules::{CalendarFeed, Recurrence, Schedule, ScheduleEntry, Weekday};
pub use timings::{QUERY_BUCKETS, QueryTimingsSnapshot};
pub use tokens::RefreshClaim;
pub use two_factor::TotpRecord;
pub use webhooks::{
    AttemptOutcome, DeliveryKey, DeliveryState, DueDelivery, WebhookDelivery, WebhookEndpoint,
};
