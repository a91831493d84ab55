//! `vtp`: see `vtp --help`.

use std::process::ExitCode;

use clap::Parser;
use vtp_server::config::{Cli, Command, UserCommand};
use vtp_server::{Server, commands, server, telemetry};

fn main() -> ExitCode {
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
        match cli.command.unwrap_or(Command::Serve(cli.serve)) {
            Command::Serve(args) => {
                telemetry::init(&args.log);
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
            Command::User(UserCommand::Create(args)) => commands::user_create(&args).await,
            Command::User(UserCommand::SetRole(args)) => commands::user_set_role(&args).await,
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
