//! Command line: the benchmark run itself, and the hidden helper
//! subcommands the harness re-executes itself with (pod servers, library
//! clients measured in their own process).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `podlink-bench [--quick] [--repeats N] [--only SCENARIO,...]`.
#[derive(Debug, Parser)]
#[command(
    name = "podlink-bench",
    about = "Benchmark podlink against kubectl and kube-rs on one sandbox"
)]
pub struct Cli {
    /// A helper role (internal: the harness starts itself with these).
    #[command(subcommand)]
    pub helper: Option<Helper>,
    /// The benchmark run.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Options of a benchmark run.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Small sizes and few repeats: proves the harness works in seconds.
    #[arg(long)]
    pub quick: bool,
    /// Repeats per client and scenario (default: 3, or 2 with --quick).
    #[arg(long)]
    pub repeats: Option<usize>,
    /// Run only these scenarios.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Scenario>,
    /// The podlink binary (default: built with cargo next to this harness).
    #[arg(long, value_name = "PATH")]
    pub podlink: Option<PathBuf>,
    /// The kubectl binary.
    #[arg(long, value_name = "PATH", default_value = "kubectl")]
    pub kubectl: PathBuf,
    /// Also write the report (Markdown) to this file.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The scenarios of issue #10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// `head -c 1G /dev/zero` read through exec.
    ExecStdout,
    /// 1 GiB piped into `cat > /dev/null` through exec.
    ExecStdin,
    /// 200 sequential `true` as whole processes.
    ExecLatency,
    /// 1 GiB through one port-forwarded connection.
    PfBulk,
    /// Small HTTP requests over 50 concurrent forwarded connections.
    PfRequests,
    /// Initial sync of 100,000 pods, then the rate of 100,000 deletions.
    Watch,
    /// 100 concurrent idle exec sessions.
    Idle,
}

impl Scenario {
    /// Every scenario, in report order.
    pub const ALL: [Scenario; 7] = [
        Scenario::ExecStdout,
        Scenario::ExecStdin,
        Scenario::ExecLatency,
        Scenario::PfBulk,
        Scenario::PfRequests,
        Scenario::Watch,
        Scenario::Idle,
    ];
}

/// Roles the harness plays in a child process of itself.
#[derive(Debug, Subcommand)]
pub enum Helper {
    /// Inside a sandbox pod: serve bulk downloads and tiny HTTP responses.
    #[command(hide = true)]
    PodServer {
        /// Port of the bulk server (client sends a u64 length, gets that many bytes).
        #[arg(long)]
        bulk_port: u16,
        /// Port of the HTTP/1.1 keep-alive server.
        #[arg(long)]
        http_port: u16,
    },
    /// The port-forward load generator; prints `SECONDS P99_MS`.
    #[command(hide = true)]
    PfLoad {
        /// Local port to connect to.
        #[arg(long)]
        port: u16,
        /// Download this many bytes through one connection (bulk mode).
        #[arg(long)]
        bulk_bytes: Option<u64>,
        /// Small HTTP requests in total (request mode).
        #[arg(long, default_value_t = 0)]
        requests: usize,
        /// Concurrent connections carrying them.
        #[arg(long, default_value_t = 1)]
        connections: usize,
    },
    /// The raw ceiling: TLS server streaming `head -c N /dev/zero` with no framing.
    #[command(hide = true)]
    RawServer {
        /// DER certificate file.
        #[arg(long)]
        cert: PathBuf,
        /// DER PKCS#8 key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// kube-rs `Api::<Pod>::exec` (ws) as a whole process; uses $KUBECONFIG.
    #[command(hide = true)]
    KubeExec {
        /// What to run.
        #[arg(value_enum)]
        mode: ExecMode,
        /// Pod to exec in.
        #[arg(long, default_value = "demo")]
        pod: String,
        /// Bytes for `stdout` (and expected count).
        #[arg(long, default_value_t = 0)]
        bytes: u64,
    },
    /// A watcher in its own process; prints `synced N` and `deleted N`.
    #[command(hide = true)]
    LibWatch {
        /// Which library.
        #[arg(value_enum)]
        library: Library,
        /// Namespace to watch.
        #[arg(long)]
        namespace: String,
        /// Print `deleted N` once this many deletions were seen.
        #[arg(long)]
        expect_deletes: u64,
        /// podlink only: keep typed `Pod` values instead of compact JSON.
        #[arg(long)]
        typed: bool,
    },
    /// Idle exec sessions in one process; prints `rss_before_kib rss_after_kib`.
    #[command(hide = true)]
    LibIdle {
        /// Which library.
        #[arg(value_enum)]
        library: Library,
        /// Number of sessions.
        #[arg(long)]
        sessions: usize,
        /// Pod to exec in.
        #[arg(long, default_value = "demo")]
        pod: String,
    },
}

/// What the kube-rs exec helper runs.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExecMode {
    /// `head -c BYTES /dev/zero`, stdout counted.
    Stdout,
    /// Own stdin copied into `sh -c 'cat > /dev/null'`.
    Stdin,
    /// `true`.
    True,
}

/// A Rust client library measured in a helper process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Library {
    /// kube-rs (`kube::runtime::watcher`, `Api::exec`).
    KubeRs,
    /// The podlink-client library.
    Podlink,
}
