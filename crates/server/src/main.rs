//! `vtp`: see `vtp --help`.

use std::process::ExitCode;

use clap::Parser;
use vtp_server::config::{Cli, Command, NodeRole, RecordingCommand, UserCommand};
use vtp_server::sfu_node::SfuNode;
use vtp_server::{Server, commands, server, telemetry};

/// Keeps large, short-lived allocations out of the heap. Each password hash
/// takes a 19 MiB argon2 work area; glibc would otherwise raise its mmap
/// threshold after the first one is freed and keep later ones resident,
/// adding ~20 MiB per blocking thread to an idle server for good.
fn release_large_allocations_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called once,
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

fn main() -> ExitCode {
    release_large_allocations_to_the_os();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve(Box::new(cli.serve))) {
            Command::Serve(args) if args.role == NodeRole::Sfu => {
                telemetry::init(&args.log);
                let node = SfuNode::build(&args)?;
                let listener = tokio::net::TcpListener::bind(args.bind)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.bind))?;
                for line in node.summary(listener.local_addr()?) {
                    tracing::info!("{line}");
                }
                node.run(listener, server::shutdown_signal()).await
            }
            Command::Serve(args) => {
                telemetry::init(&args.log);
                // One server per data directory; `vtp restore` waits for it to stop.
                let _lock = vtp_server::backup::DataDirLock::acquire(&args.store.data_dir)?;
                let server = Server::build(&args).await?;
                let listener = tokio::net::TcpListener::bind(args.bind)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.bind))?;
                let addr = listener.local_addr()?;
                for line in server.summary(addr) {
                    tracing::info!("{line}");
                }
                server.run(listener, server::shutdown_signal()).await
            }
            Command::Migrate(args) => commands::migrate(&args).await,
            Command::Backup(args) => vtp_server::backup::backup(&args).await,
            Command::Restore(args) => vtp_server::backup::restore(&args).await,
            Command::Doctor(args) => {
                if vtp_server::doctor::run(&args).await {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("some checks failed"))
                }
            }
            Command::User(UserCommand::Create(args)) => commands::user_create(&args).await,
            Command::User(UserCommand::SetRole(args)) => commands::user_set_role(&args).await,
            Command::User(UserCommand::Reset2fa(args)) => commands::user_reset_2fa(&args).await,
            Command::Recording(RecordingCommand::Export(args)) => {
                commands::recording_export(&args).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
