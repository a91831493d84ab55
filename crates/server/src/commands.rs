//! The subcommands of `vtp` other than `serve`: migrations, users, and
//! the export of a recording.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use chrono::Utc;
use vtp_store::{
    ExportLayout, MAX_DISPLAY_NAME_CHARS, NewUser, RecordingState, Store, StoreError, StoreOptions,
    UserPatch,
};

use crate::api::dto::{clean_text, normalize_email};
use crate::audit::{Audit, AuditEntry, AuditKind};
use crate::auth::password::{hash_password, validate_new_password};
use crate::config::{
    RecordingExportArgs, StoreArgs, UserCreateArgs, UserEmailArgs, UserSetRoleArgs,
};
use crate::recording::export::{ExportSettings, INSTALL_FFMPEG, export_to_file, run};
use crate::recording::storage::ReadySignal;
use crate::server::recording_files_from;

pub(crate) async fn open_store(args: &StoreArgs) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data directory {}", args.data_dir.display()))?;
    let mut options = StoreOptions::new(args.database_url());
    options.max_connections = 2;
    Store::open(options).await.context("cannot open the store")
}

/// `vtp migrate`
pub async fn migrate(args: &StoreArgs) -> anyhow::Result<()> {
    let store = open_store(args).await?;
    println!(
        "{}: schema at version {}",
        store.description(),
        store.schema_version()
    );
    store.close().await;
    Ok(())
}

/// `vtp user create`
pub async fn user_create(args: &UserCreateArgs) -> anyhow::Result<()> {
    let email = normalize_email(&args.email).map_err(|e| anyhow::anyhow!(e.message))?;
    let password = match (&args.password, args.password_stdin) {
        (Some(p), _) => p.expose().to_string(),
        (None, true) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from stdin")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
        (None, false) => bail!("give --password or --password-stdin"),
    };
    let default_name = email.split('@').next().unwrap_or("user").to_string();
    let display_name = clean_text(
        "display name",
        args.display_name.as_deref().unwrap_or(&default_name),
        MAX_DISPLAY_NAME_CHARS,
    )
    .map_err(|e| anyhow::anyhow!(e.message))?;
    validate_new_password(&password, &[&email, &display_name])?;
    let password_hash = hash_password(password).await?;
    let store = open_store(&args.store).await?;
    let created = store
        .create_user(
            NewUser {
                email,
                display_name,
                password_hash,
                role: args.role.into(),
            },
            Utc::now(),
        )
        .await;
    if let Ok(user) = &created {
        Audit::new(store.clone())
            .record(
                AuditEntry::new(AuditKind::UserCreated)
                    .on("user", user.id)
                    .from_address("command line")
                    .with_detail(
                        serde_json::json!({ "via": "vtp user create", "role": user.role }),
                    ),
            )
            .await;
    }
    store.close().await;
    match created {
        Ok(user) => {
            println!("created {} {} (id {})", user.role, user.email, user.id);
            Ok(())
        }
        Err(StoreError::Conflict(_)) => {
            bail!("a user with e-mail {} already exists", args.email.trim())
        }
        Err(e) => Err(e.into()),
    }
}

/// The account with `email` (normalised), or a sentence saying there is none.
async fn user_by_email(store: &Store, email: &str) -> anyhow::Result<vtp_store::User> {
    match store.credentials_by_email(email).await {
        Ok(c) => Ok(c.user),
        Err(StoreError::NotFound) => bail!("no user with e-mail {email}"),
        Err(e) => Err(e.into()),
    }
}

/// `vtp user set-role`
pub async fn user_set_role(args: &UserSetRoleArgs) -> anyhow::Result<()> {
    let email = normalize_email(&args.email).map_err(|e| anyhow::anyhow!(e.message))?;
    let store = open_store(&args.store).await?;
    let result = async {
        let user = user_by_email(&store, &email).await?;
        let patch = UserPatch {
            role: Some(args.role.into()),
            ..Default::default()
        };
        let user = store.update_user(user.id, &patch, Utc::now()).await?;
        Audit::new(store.clone())
            .record(
                AuditEntry::new(AuditKind::UserRoleChanged)
                    .on("user", user.id)
                    .from_address("command line")
                    .with_detail(
                        serde_json::json!({ "to": user.role, "via": "vtp user set-role" }),
                    ),
            )
            .await;
        println!("{} is now {}", user.email, user.role);
        Ok(())
    }
    .await;
    store.close().await;
    result
}

/// `vtp user reset-2fa`: two-factor sign-in off, every session ended.
pub async fn user_reset_2fa(args: &UserEmailArgs) -> anyhow::Result<()> {
    let email = normalize_email(&args.email).map_err(|e| anyhow::anyhow!(e.message))?;
    let store = open_store(&args.store).await?;
    let result = async {
        let user = user_by_email(&store, &email).await?;
        let now = Utc::now();
        store.disable_totp(user.id, now).await?;
        store.revoke_user_refresh_tokens(user.id, now).await?;
        store.bump_token_epoch(user.id, now).await?;
        Audit::new(store.clone())
            .record(
                AuditEntry::new(AuditKind::User2faReset)
                    .on("user", user.id)
                    .from_address("command line")
                    .with_detail(serde_json::json!({ "via": "vtp user reset-2fa" })),
            )
            .await;
        println!(
            "two-factor sign-in is off for {}; their sessions have ended",
            user.email
        );
        Ok(())
    }
    .await;
    store.close().await;
    result
}

/// `vtp recording export`: composes a ready recording into one file with
/// ffmpeg, printing the progress as percentages (one line per step).
pub async fn recording_export(args: &RecordingExportArgs) -> anyhow::Result<()> {
    let settings = ExportSettings {
        ffmpeg: args.export.ffmpeg.clone(),
        threads: args.export.export_threads,
    };
    // First, so that a machine without ffmpeg hears what to install at once.
    if run::ffmpeg_version(&settings.ffmpeg).await.is_none() {
        bail!("{INSTALL_FFMPEG}");
    }
    let layout: ExportLayout = args.layout.into();
    let store = open_store(&args.store).await?;
    let result = async {
        let recording = match store.get_recording(args.id).await {
            Ok(r) => r,
            Err(StoreError::NotFound) => bail!("no recording with id {}", args.id),
            Err(e) => return Err(e.into()),
        };
        if recording.state != RecordingState::Ready {
            bail!(
                "recording {} is {}: only a ready recording can be exported",
                recording.id,
                recording.state
            );
        }
        let output = args.output.clone().unwrap_or_else(|| {
            let ext = if layout == ExportLayout::Audio {
                "m4a"
            } else {
                "mp4"
            };
            PathBuf::from(format!("{}-{layout}.{ext}", recording.id))
        });
        println!(
            "exporting recording {} ({layout}) to {}",
            recording.id,
            output.display()
        );
        let mut shown = None;
        let files = recording_files_from(
            &args.recording_storage,
            &args.store.data_dir,
            ReadySignal::default(),
        )?;
        let bytes = export_to_file(
            &store,
            &files,
            &recording,
            layout,
            &output,
            &settings,
            |p| {
                let percent = (p * 100.0).floor() as u32;
                if shown != Some(percent) {
                    shown = Some(percent);
                    println!("progress: {percent}%");
                }
            },
        )
        .await?;
        println!("wrote {} ({bytes} bytes)", output.display());
        Ok(())
    }
    .await;
    store.close().await;
    result
}
