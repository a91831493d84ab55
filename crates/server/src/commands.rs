//! The subcommands of `vtp` other than `serve`.

use std::io::BufRead;

use anyhow::{Context as _, bail};
use chrono::Utc;
use vtp_store::{NewUser, Store, StoreError, StoreOptions, UserPatch};

use crate::api::dto::{MAX_DISPLAY_NAME_CHARS, clean_text, normalize_email};
use crate::auth::password::{hash_password, validate_new_password};
use crate::config::{StoreArgs, UserCreateArgs, UserSetRoleArgs};

async fn open_store(args: &StoreArgs) -> anyhow::Result<Store> {
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
    validate_new_password(&password).map_err(|e| anyhow::anyhow!(e.message))?;
    let default_name = email.split('@').next().unwrap_or("user").to_string();
    let display_name = clean_text(
        "display name",
        args.display_name.as_deref().unwrap_or(&default_name),
        MAX_DISPLAY_NAME_CHARS,
    )
    .map_err(|e| anyhow::anyhow!(e.message))?;
    let password_hash = hash_password(password)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
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

/// `vtp user set-role`
pub async fn user_set_role(args: &UserSetRoleArgs) -> anyhow::Result<()> {
    let email = normalize_email(&args.email).map_err(|e| anyhow::anyhow!(e.message))?;
    let store = open_store(&args.store).await?;
    let result = async {
        let user = match store.credentials_by_email(&email).await {
            Ok(c) => c.user,
            Err(StoreError::NotFound) => bail!("no user with e-mail {email}"),
            Err(e) => return Err(e.into()),
        };
        let patch = UserPatch {
            role: Some(args.role.into()),
            ..Default::default()
        };
        let user = store.update_user(user.id, &patch, Utc::now()).await?;
        println!("{} is now {}", user.email, user.role);
        Ok(())
    }
    .await;
    store.close().await;
    result
}
