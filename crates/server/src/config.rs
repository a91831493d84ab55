//! The one typed configuration of VTP. Every setting is a command-line flag
//! and a `VTP_*` environment variable (flag wins); `vtp --help` lists them.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod ops;
pub use ops::{AuditArgs, WebhookArgs};

/// The release and the git revision this binary was built from (`build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("VTP_GIT_REVISION"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "vtp",
    version = VERSION,
    args_conflicts_with_subcommands = true,
    about = "VTP: a live virtual classroom (HTTP API, Socket.IO signalling, SFU) in one program.",
    long_about = "VTP: a live virtual classroom in one program.\n\n\
        With no command, `vtp` runs `serve`. Every setting can also be given as the \
        environment variable shown next to it; a flag wins over the variable."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for the default `serve` command, when none is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(StoreArgs),
    /// Manage user accounts from the command line (how the first admin is made).
    #[command(subcommand)]
    User(UserCommand),
    /// Work on recordings from the command line.
    #[command(subcommand)]
    Recording(RecordingCommand),
    /// Write a consistent copy of the embedded database to FILE while VTP
    /// runs (PostgreSQL: use pg_dump). The data directory's key, certificates
    /// and recordings are files to copy alongside (docs/deploy.md).
    Backup(BackupArgs),
    /// Replace the embedded database with a backup taken by `vtp backup`
    /// (VTP must be stopped); the database it replaces is kept beside it,
    /// and the backup is migrated forward to this release's schema.
    Restore(RestoreArgs),
    /// Check a configuration before a class (same flags and variables as
    /// `serve`): the store, the certificate, the ports, each TURN server
    /// with VTP's credential. One line per check; exits 1 when one fails.
    Doctor(Box<ServeArgs>),
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup file to write (must not exist yet).
    pub file: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file written by `vtp backup`.
    pub file: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum RecordingCommand {
    /// Compose a finished recording into one MP4 (H.264 + AAC; `audio`:
    /// AAC only) with ffmpeg, showing progress.
    Export(RecordingExportArgs),
}

#[derive(Debug, Args)]
pub struct RecordingExportArgs {
    /// The recording's id.
    pub id: uuid::Uuid,
    /// `grid`: every video tiled; `speaker`: the screen share (else the
    /// host's camera) large, the other videos in a strip; `audio`: sound only.
    #[arg(long, value_enum, default_value_t = ExportLayoutArg::Grid)]
    pub layout: ExportLayoutArg,
    /// Where to write the file. Default: `<id>-<layout>.mp4` (`.m4a` for
    /// `audio`) in the current directory.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub export: ExportArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// The server's storage settings, to read recordings it has uploaded.
    #[command(flatten)]
    pub recording_storage: RecordingStorageArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UdpBatchingArg {
    Off,
    Sendmmsg,
    Gso,
}

impl From<UdpBatchingArg> for vtp_sfu_driver::UdpBatching {
    fn from(b: UdpBatchingArg) -> Self {
        match b {
            UdpBatchingArg::Off => vtp_sfu_driver::UdpBatching::Off,
            UdpBatchingArg::Sendmmsg => vtp_sfu_driver::UdpBatching::Sendmmsg,
            UdpBatchingArg::Gso => vtp_sfu_driver::UdpBatching::SendmmsgAndGso,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportLayoutArg {
    Grid,
    Speaker,
    Audio,
}

impl From<ExportLayoutArg> for vtp_store::ExportLayout {
    fn from(l: ExportLayoutArg) -> Self {
        match l {
            ExportLayoutArg::Grid => vtp_store::ExportLayout::Grid,
            ExportLayoutArg::Speaker => vtp_store::ExportLayout::Speaker,
            ExportLayoutArg::Audio => vtp_store::ExportLayout::Audio,
        }
    }
}

/// How ffmpeg runs an export (`serve` and `recording export`).
#[derive(Clone, Debug, Args)]
pub struct ExportArgs {
    /// The ffmpeg program that composes exports (Debian package `ffmpeg`).
    #[arg(long, env = "VTP_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,
    /// Threads one export's ffmpeg may use (decoding, filters, encoding each).
    #[arg(long, env = "VTP_EXPORT_THREADS", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub export_threads: u32,
}

/// The server's export queue.
#[derive(Clone, Debug, Args)]
pub struct ExportQueueArgs {
    #[command(flatten)]
    pub run: ExportArgs,
    /// Exports that run at once, server-wide (the others wait in order).
    #[arg(long, env = "VTP_MAX_CONCURRENT_EXPORTS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=16))]
    pub max_concurrent_exports: u32,
    /// Exports waiting or running at once, server-wide; more are refused.
    #[arg(long, env = "VTP_MAX_QUEUED_EXPORTS", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_queued_exports: u64,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user with any role.
    Create(UserCreateArgs),
    /// Change the role of an existing user.
    SetRole(UserSetRoleArgs),
    /// Turn off a user's two-factor sign-in (a lost phone and lost
    /// recovery codes): they sign in with the password alone, or enrol
    /// again if their role requires it. Ends their sessions.
    #[command(name = "reset-2fa")]
    Reset2fa(UserEmailArgs),
}

#[derive(Debug, Args)]
pub struct UserEmailArgs {
    #[arg(long)]
    pub email: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct UserCreateArgs {
    #[arg(long)]
    pub email: String,
    /// The password (visible in the process list: prefer --password-stdin).
    #[arg(
        long,
        conflicts_with = "password_stdin",
        required_unless_present = "password_stdin"
    )]
    pub password: Option<Secret>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    #[arg(long, value_enum, default_value_t = CliRole::Student)]
    pub role: CliRole,
    /// Name shown to others; defaults to the part of the e-mail before `@`.
    #[arg(long)]
    pub display_name: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct UserSetRoleArgs {
    #[arg(long)]
    pub email: String,
    #[arg(long, value_enum)]
    pub role: CliRole,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CliRole {
    Admin,
    Instructor,
    Student,
}

impl From<CliRole> for vtp_store::Role {
    fn from(r: CliRole) -> Self {
        match r {
            CliRole::Admin => vtp_store::Role::Admin,
            CliRole::Instructor => vtp_store::Role::Instructor,
            CliRole::Student => vtp_store::Role::Student,
        }
    }
}

/// Where the data lives; shared by every command that opens the store.
#[derive(Clone, Debug, Args)]
pub struct StoreArgs {
    /// Directory for the embedded database, the generated JWT key and recordings.
    #[arg(long, env = "VTP_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Database URL: `postgres://user:pass@host/db` for PostgreSQL, or
    /// `sqlite://path`. Default: `sqlite://<data-dir>/vtp.db`.
    #[arg(long, env = "VTP_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,
    /// Most database connections kept open.
    #[arg(long, env = "VTP_DATABASE_MAX_CONNECTIONS", default_value_t = 8)]
    pub database_max_connections: u32,
}

impl StoreArgs {
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_string(),
            None => format!("sqlite://{}", self.data_dir.join("vtp.db").display()),
        }
    }
}

#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    /// Address of the HTTP API, Socket.IO and the web client.
    #[arg(long, env = "VTP_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Key that signs access tokens (HS256). When not given, a random key is
    /// generated once and kept in `<data-dir>/jwt-secret`, so restarts keep
    /// sessions valid.
    #[arg(long, env = "VTP_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// Key (32 bytes or more) that seals the secrets the server must read
    /// back, such as two-factor secrets, before they are stored; when unset,
    /// generated once and kept in `<data-dir>/secrets-key`. Keep it with
    /// the database's backups, but not in the same place.
    #[arg(long, env = "VTP_SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<Secret>,
    /// Lifetime of access tokens (e.g. `900`, `15m`, `1h`).
    #[arg(long, env = "VTP_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = parse_duration)]
    pub access_token_ttl: Duration,
    /// Lifetime of refresh tokens (e.g. `30d`).
    #[arg(long, env = "VTP_REFRESH_TOKEN_TTL", default_value = "30d", value_parser = parse_duration)]
    pub refresh_token_ttl: Duration,
    /// Whether anyone may create a (student) account through the API.
    #[arg(long, env = "VTP_ALLOW_REGISTRATION", default_value_t = true, action = clap::ArgAction::Set)]
    pub allow_registration: bool,
    /// Roles that must sign in with two factors, comma-separated (e.g.
    /// `admin,instructor`): an account of such a role without it gets a
    /// token good only for enrolling until it has. Default: none.
    #[arg(long = "require-2fa-for", env = "VTP_REQUIRE_2FA_FOR", value_enum, value_delimiter = ',', num_args = 0..)]
    pub require_2fa_for: Vec<CliRole>,
    /// Origins allowed to call the API from a browser, comma-separated;
    /// `*` allows any. Empty: same origin only.
    #[arg(long, env = "VTP_CORS_ORIGINS", value_delimiter = ',', num_args = 0..)]
    pub cors_origins: Vec<String>,
    /// Open HTTP and signalling connections at most (new ones beyond are closed).
    /// Also the cap on signed-in signalling sessions; a quarter of it (at
    /// least one) is the separate cap on signalling sessions not signed in yet.
    #[arg(long, env = "VTP_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Open connections at most from one client address (TCP peer; peers in
    /// `--trust-forwarded-for` are proxies and are not counted). A school
    /// behind one NAT address is one IP: about two per participant.
    #[arg(long, env = "VTP_MAX_CONNECTIONS_PER_IP", default_value_t = 2_500)]
    pub max_connections_per_ip: usize,
    /// Signalling sessions not signed in yet, at most, from one client
    /// address (after `--trust-forwarded-for`).
    #[arg(long, env = "VTP_MAX_UNAUTHENTICATED_PER_IP", default_value_t = 64)]
    pub max_unauthenticated_per_ip: usize,
    /// Time a signalling session has to sign in (connect the Socket.IO
    /// namespace with a token) before it is closed.
    #[arg(long, env = "VTP_SOCKET_AUTH_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub socket_auth_timeout: Duration,
    /// Time a client has to send a request's head (protects against slow clients
    /// holding connections open); also how long an idle keep-alive connection stays.
    #[arg(long, env = "VTP_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's whole body, from the request's
    /// head (bodies are small: `--max-body-bytes`).
    #[arg(long, env = "VTP_BODY_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "VTP_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Sign-in attempts allowed per client address per minute.
    #[arg(long, env = "VTP_LOGIN_RATE_PER_IP", default_value_t = 20)]
    pub login_rate_per_ip: u32,
    /// Sign-in attempts allowed per account per 15 minutes.
    #[arg(long, env = "VTP_LOGIN_RATE_PER_ACCOUNT", default_value_t = 10)]
    pub login_rate_per_account: u32,
    /// Reverse proxies (CIDRs, comma-separated, e.g. `127.0.0.1/32,10.0.0.0/8`)
    /// whose `X-Forwarded-For` is believed: for a request from one of them,
    /// the client is the nearest address in that header that is not itself
    /// a trusted proxy. Requests from anywhere else are counted by their own
    /// address, whatever they claim. Empty: the header is ignored.
    #[arg(long, env = "VTP_TRUST_FORWARDED_FOR", value_delimiter = ',', value_parser = parse_cidr)]
    pub trust_forwarded_for: Vec<ipnet::IpNet>,
    /// UDP address of the SFU: every WebRTC transport is multiplexed on it.
    #[arg(long, env = "VTP_RTC_BIND", default_value = "127.0.0.1:40000")]
    pub rtc_bind: SocketAddr,
    /// TCP address of the SFU's ICE-TCP listener (for networks that block
    /// UDP; candidates prefer UDP), or `off`. Default: `--rtc-bind`'s IP and
    /// port number.
    #[arg(long, env = "VTP_RTC_TCP_BIND", value_parser = parse_rtc_tcp_bind)]
    pub rtc_tcp_bind: Option<RtcTcpBind>,
    /// ICE-TCP connections open at once (more are closed at accept).
    #[arg(long, env = "VTP_RTC_TCP_MAX_CONNECTIONS", default_value_t = 4096)]
    pub rtc_tcp_max_connections: usize,
    /// ICE-TCP connections open at once from one client IP (a school
    /// behind one NAT address is one IP: two per participant).
    #[arg(
        long,
        env = "VTP_RTC_TCP_MAX_CONNECTIONS_PER_IP",
        default_value_t = 1024
    )]
    pub rtc_tcp_max_connections_per_ip: usize,
    /// The IP addresses announced to clients in ICE candidates (each gets a
    /// UDP and a TCP candidate, the first preferred); repeat the flag or
    /// separate with commas, IPv4 or IPv6. Needed behind NAT. Default: the
    /// `--rtc-bind` IP, or with 0.0.0.0 / [::] the host's interface
    /// addresses.
    #[arg(long, env = "VTP_ANNOUNCED_IP", value_delimiter = ',')]
    pub announced_ip: Vec<std::net::IpAddr>,
    /// Where the SFU's estimate of each subscriber's downlink starts (kbit/s)
    /// before its congestion-control feedback refines it; 0 turns bandwidth
    /// estimation, pacing and bandwidth-driven layer choice off (consumers
    /// then get their preferred layers whatever their link).
    #[arg(long, env = "VTP_INITIAL_BANDWIDTH_KBPS", default_value_t = 1000)]
    pub initial_bandwidth_kbps: u64,
    /// SFU worker threads (rooms are spread over them). Default: one per core.
    #[arg(long, env = "VTP_SFU_WORKERS")]
    pub sfu_workers: Option<usize>,
    /// How the SFU hands UDP datagrams to the kernel: `gso` (`sendmmsg`,
    /// and UDP GSO for several datagrams of a turn to one address where
    /// the kernel supports it), `sendmmsg`, or `off` (one `send_to` each,
    /// the portable path). Linux only; elsewhere always `off`.
    #[arg(long, env = "VTP_SFU_UDP_BATCHING", value_enum, default_value_t = UdpBatchingArg::Gso)]
    pub sfu_udp_batching: UdpBatchingArg,
    /// What this node runs: `all` (API, signalling and SFU in one process),
    /// `api` (API and signalling; media on the SFU node at `--sfu-url`) or
    /// `sfu` (media only, driven by API nodes through `/sfu/v1`).
    #[arg(long, env = "VTP_ROLE", value_enum, default_value_t = NodeRole::All)]
    pub role: NodeRole,
    /// Shared secret of the SFU control API (`Authorization: Bearer …`), at
    /// least 32 bytes (e.g. `openssl rand -hex 32`).
    /// Needed by `sfu` and `api` nodes; an `all` node serves `/sfu/v1` only
    /// when it is set.
    #[arg(long, env = "VTP_SFU_SECRET", hide_env_values = true)]
    pub sfu_secret: Option<Secret>,
    /// Base URL of the SFU node an `api` node sends media to, e.g.
    /// `http://10.0.0.5:8080`.
    #[arg(long, env = "VTP_SFU_URL")]
    pub sfu_url: Option<String>,
    /// Recorded files stop growing once a recording is this long (it is
    /// finalized when a host stops it or the session ends).
    #[arg(long, env = "VTP_MAX_RECORDING_DURATION", default_value = "4h", value_parser = parse_duration)]
    pub max_recording_duration: Duration,
    /// A recorded track's file stops growing at this many bytes.
    #[arg(long, env = "VTP_MAX_RECORDING_TRACK_BYTES", default_value_t = 4 << 30)]
    pub max_recording_track_bytes: u64,
    /// Recording does not start when the disk has less free space than this.
    #[arg(long, env = "VTP_RECORDING_MIN_FREE_BYTES", default_value_t = 1 << 30)]
    pub recording_min_free_bytes: u64,
    #[command(flatten)]
    pub exports: ExportQueueArgs,
    #[command(flatten)]
    pub recording_storage: RecordingStorageArgs,
    #[command(flatten)]
    pub turn: TurnArgs,
    /// How long a peer whose connection dropped keeps its place in a room
    /// (and comes back without others seeing it leave).
    #[arg(long, env = "VTP_RECONNECT_GRACE", default_value = "15s", value_parser = parse_duration)]
    pub reconnect_grace: Duration,
    /// Rooms one signalling connection may be in at once.
    #[arg(long, env = "VTP_MAX_ROOMS_PER_CONNECTION", default_value_t = 4)]
    pub max_rooms_per_connection: usize,
    /// Signalling events per second one connection may send (bursts of twice that).
    #[arg(long, env = "VTP_SOCKET_EVENTS_PER_SECOND", default_value_t = 20)]
    pub socket_events_per_second: u32,
    /// Largest signalling event accepted, in bytes.
    #[arg(long, env = "VTP_MAX_EVENT_BYTES", default_value_t = 64 * 1024)]
    pub max_event_bytes: usize,
    /// Chat messages one peer may send in a burst (refilled at one per second).
    #[arg(long, env = "VTP_CHAT_BURST", default_value_t = 5)]
    pub chat_burst: u32,
    /// Folder of the built web app (`npm run build` in `web/` makes
    /// `web/dist`), served at `/`. When it holds no `index.html`, `/` shows a
    /// page saying how to build it.
    #[arg(long, env = "VTP_WEB_DIR", default_value = "web/dist")]
    pub web_dir: PathBuf,
    /// How long in-flight requests may take to finish at shutdown.
    #[arg(long, env = "VTP_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub audit: AuditArgs,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
}

/// Who may read `/metrics` (docs/deploy.md, "Metrics"). With neither flag
/// it is served on the HTTP port only when that port is loopback.
#[derive(Clone, Debug, Args)]
pub struct MetricsArgs {
    /// Serve `/metrics` on this address only (e.g. `127.0.0.1:9100` or a
    /// management network's address), and not on the HTTP port.
    #[arg(long, env = "VTP_METRICS_BIND", value_name = "ADDR")]
    pub metrics_bind: Option<SocketAddr>,
    /// Require `Authorization: Bearer <token>` on `/metrics` (Prometheus's
    /// `authorization.credentials_file`), wherever it is served.
    #[arg(long, env = "VTP_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,
}

/// Where finished recordings are kept: the data directory, or an
/// S3-compatible bucket they are uploaded to.
#[derive(Clone, Debug, Args)]
pub struct RecordingStorageArgs {
    /// Upload finished recordings to this bucket: `s3://bucket` or
    /// `s3://bucket/prefix`. Unset: recordings stay in the data directory.
    #[arg(long, env = "VTP_RECORDING_S3_URL")]
    pub recording_s3_url: Option<String>,
    /// Endpoint of an S3-compatible service (MinIO, …), e.g.
    /// `http://127.0.0.1:9000`. Unset: AWS S3 in `--recording-s3-region`.
    #[arg(long, env = "VTP_RECORDING_S3_ENDPOINT")]
    pub recording_s3_endpoint: Option<String>,
    #[arg(long, env = "VTP_RECORDING_S3_REGION", default_value = "us-east-1")]
    pub recording_s3_region: String,
    /// Unset (with the secret): the instance's credentials (metadata service).
    #[arg(long, env = "VTP_RECORDING_S3_ACCESS_KEY_ID")]
    pub recording_s3_access_key_id: Option<String>,
    #[arg(
        long,
        env = "VTP_RECORDING_S3_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub recording_s3_secret_access_key: Option<Secret>,
    /// Allow a plain `http://` endpoint (loopback or a private network only).
    #[arg(long, env = "VTP_RECORDING_S3_ALLOW_HTTP")]
    pub recording_s3_allow_http: bool,
    /// Redirect downloads of uploaded files to presigned URLs valid this
    /// long (e.g. `15m`). Unset: downloads are proxied through VTP (ranges
    /// read from the bucket).
    #[arg(long, env = "VTP_RECORDING_S3_PRESIGN", value_parser = parse_duration)]
    pub recording_s3_presign: Option<Duration>,
    /// A failed upload is retried after this long, doubling per failure (up
    /// to 15 minutes); also how often pending uploads are looked for.
    #[arg(long, env = "VTP_RECORDING_UPLOAD_RETRY", default_value = "30s", value_parser = parse_duration)]
    pub recording_upload_retry: Duration,
}

/// TURN relays offered to clients (see `turn`).
#[derive(Clone, Debug, Args)]
pub struct TurnArgs {
    /// A TURN server clients may relay media through when UDP to the SFU is
    /// blocked, e.g. `turn:turn.example.org:3478?transport=udp` or
    /// `turns:turn.example.org:443?transport=tcp`. Repeatable (or
    /// comma-separated); each `create-transport` answer lists them in
    /// `iceServers` with a credential of its own.
    #[arg(long = "turn-url", env = "VTP_TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,
    /// The secret shared with the TURN server (coturn's `static-auth-secret`
    /// with `use-auth-secret`): credentials are derived from it.
    #[arg(long, env = "VTP_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<Secret>,
    /// How long a TURN credential handed to a client stays valid (an ongoing
    /// allocation is refreshed by the client within it).
    #[arg(long, env = "VTP_TURN_CREDENTIAL_TTL", default_value = "12h", value_parser = parse_duration)]
    pub turn_credential_ttl: Duration,
}

/// Bytes a `VTP_SFU_SECRET` has at least: it guards every media operation
/// of every room, and nothing slows down guessing it but its length.
pub const MIN_SFU_SECRET_BYTES: usize = 32;

/// The length rule of `VTP_SFU_SECRET`, checked when a server or SFU node
/// is built (not by clap, whose refusals echo the value given).
pub fn check_sfu_secret(secret: &Secret) -> Result<(), String> {
    let len = secret.expose().len();
    if len < MIN_SFU_SECRET_BYTES {
        return Err(format!(
            "VTP_SFU_SECRET is {len} bytes; it must be at least {MIN_SFU_SECRET_BYTES} \
             (generate one with `openssl rand -hex 32`)"
        ));
    }
    Ok(())
}

/// `10.0.0.0/8`, or a bare address meaning just that host.
pub fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<ipnet::IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<std::net::IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| {
            format!("{text:?} is not an address or CIDR like 10.0.0.0/8 or 2001:db8::/32 (true/false no longer work: name the proxies)")
        })
}

/// HTTPS for `vtp serve`: browsers give camera and microphone only to a
/// page in a secure context (HTTPS, or loopback).
#[derive(Clone, Debug, Args)]
pub struct TlsArgs {
    /// Serve HTTPS with this PEM certificate chain (leaf first), with
    /// `--tls-key`. Reloaded on SIGHUP and when the file changes, without
    /// a restart; a bad new file keeps the old certificate in service.
    #[arg(
        long,
        env = "VTP_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "acme_domain"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert` (PKCS#8, RSA or SEC1 EC).
    #[arg(long, env = "VTP_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How often the certificate and key files are checked for changes.
    #[arg(long, env = "VTP_TLS_RELOAD_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub tls_reload_interval: Duration,
    /// Time a client has to complete the TLS handshake (a silent client
    /// would otherwise hold one of `--max-connections`).
    #[arg(long, env = "VTP_TLS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub tls_handshake_timeout: Duration,
    /// `Strict-Transport-Security: max-age` sent on every HTTPS response
    /// (browsers then use HTTPS only for this host); 0 sends none.
    #[arg(long, env = "VTP_HSTS_MAX_AGE", default_value = "365d", value_parser = parse_duration)]
    pub hsts_max_age: Duration,
    /// With HTTPS on: also listen for plain HTTP on this address (e.g.
    /// `0.0.0.0:80`) and redirect every request to the HTTPS URL (308).
    #[arg(long, env = "VTP_HTTP_REDIRECT_BIND", value_name = "ADDR")]
    pub http_redirect_bind: Option<SocketAddr>,
    /// Serve HTTPS with a certificate for this name from an ACME CA (Let's
    /// Encrypt), renewed automatically; repeatable (the variable takes a
    /// comma-separated list). The CA checks each name on port 80 through
    /// `--http-redirect-bind` (HTTP-01) when it is set, else on port 443
    /// of this server (TLS-ALPN-01). Account and certificates are kept
    /// in `<data-dir>/acme/`. Registering the account accepts the CA's
    /// terms of service (Let's Encrypt's subscriber agreement).
    #[arg(
        long,
        env = "VTP_ACME_DOMAIN",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub acme_domain: Vec<String>,
    /// Contact address given to the ACME CA (expiry warnings).
    #[arg(long, env = "VTP_ACME_EMAIL")]
    pub acme_email: Option<String>,
    /// The ACME CA's directory URL.
    #[arg(
        long,
        env = "VTP_ACME_DIRECTORY",
        value_name = "URL",
        default_value = "https://acme-v02.api.letsencrypt.org/directory"
    )]
    pub acme_directory: String,
    /// A PEM root certificate to trust for the ACME directory besides the
    /// system's (a private or test CA).
    #[arg(long, env = "VTP_ACME_CA_CERT", value_name = "FILE")]
    pub acme_ca_cert: Option<PathBuf>,
}

impl TlsArgs {
    /// Whether HTTPS is configured.
    pub fn enabled(&self) -> bool {
        self.tls_cert.is_some() || !self.acme_domain.is_empty()
    }
}

#[derive(Clone, Debug, Args)]
pub struct LogArgs {
    /// Log filter, e.g. `info` or `vtp_server=debug,info`.
    #[arg(long, env = "VTP_LOG", default_value = "info")]
    pub log_level: String,
    #[arg(long, env = "VTP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Which parts of VTP a node runs (`--role`; docs/ARCHITECTURE.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NodeRole {
    All,
    Api,
    Sfu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A string that must never be printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this secret. Digests are compared, so the time
    /// taken says nothing about the secret (not even its length).
    pub fn matches(&self, given: &str) -> bool {
        use sha2::{Digest, Sha256};
        let (a, b) = (
            Sha256::digest(given.as_bytes()),
            Sha256::digest(self.0.as_bytes()),
        );
        a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// `--rtc-tcp-bind`: an address, or no ICE-TCP at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtcTcpBind {
    Off,
    Addr(SocketAddr),
}

/// `off` or a socket address.
pub fn parse_rtc_tcp_bind(text: &str) -> Result<RtcTcpBind, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(RtcTcpBind::Off);
    }
    text.trim()
        .parse()
        .map(RtcTcpBind::Addr)
        .map_err(|_| format!("{text:?} is neither `off` nor an address like 0.0.0.0:443"))
}

/// `90`, `90s`, `15m`, `2h`, `30d` → a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 15m, 2h or 30d"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => return Ok(Duration::from_millis(n)),
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use ms, s, m, h or d)"
            ));
        }
    };
    Ok(Duration::from_secs(secs))
}

impl ServeArgs {
    /// Defaults for tests and embedding: every value as with no flags and no
    /// environment, with the given data directory.
    pub fn defaults_for(data_dir: PathBuf) -> ServeArgs {
        let cli = Cli::parse_from(["vtp", "--data-dir", &data_dir.display().to_string()]);
        cli.serve
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn secrets_match_only_themselves() {
        let s = Secret::new("metrics-token-0123456789");
        assert!(s.matches("metrics-token-0123456789"));
        assert!(!s.matches("metrics-token-012345678"));
        assert!(!s.matches(""));
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("900").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("15 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn rtc_addresses_parse() {
        let cli = Cli::parse_from([
            "vtp",
            "--announced-ip",
            "192.0.2.1,2001:db8::1",
            "--announced-ip",
            "198.51.100.7",
            "--rtc-tcp-bind",
            "off",
        ]);
        let ips: Vec<String> = cli
            .serve
            .announced_ip
            .iter()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(ips, ["192.0.2.1", "2001:db8::1", "198.51.100.7"]);
        assert_eq!(cli.serve.rtc_tcp_bind, Some(RtcTcpBind::Off));
        let cli = Cli::parse_from(["vtp", "--rtc-tcp-bind", "0.0.0.0:443"]);
        assert_eq!(
            cli.serve.rtc_tcp_bind,
            Some(RtcTcpBind::Addr("0.0.0.0:443".parse().unwrap()))
        );
        let defaults = Cli::parse_from(["vtp"]);
        assert_eq!(defaults.serve.rtc_tcp_bind, None);
        assert!(defaults.serve.announced_ip.is_empty());
        assert!(Cli::try_parse_from(["vtp", "--rtc-tcp-bind", "sometimes"]).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        let cli = Cli::parse_from([
            "vtp",
            "--jwt-secret",
            "hunter2",
            "--database-url",
            "postgres://u:pw@h/db",
            "--sfu-secret",
            "sfu-hunter3",
            "--recording-s3-secret-access-key",
            "s3-hunter4",
            "--turn-secret",
            "turn-hunter5",
        ]);
        let dump = format!("{cli:?}");
        assert!(
            !dump.contains("hunter2")
                && !dump.contains("pw@")
                && !dump.contains("hunter3")
                && !dump.contains("hunter4")
                && !dump.contains("hunter5"),
            "{dump}"
        );
    }
}
