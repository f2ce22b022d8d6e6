//! The command line, as CONTRACT.md fixes it: global options and one
//! subcommand, parsed with clap's derive API.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// podlink: Kubernetes exec, attach, port-forward, cp and watch that survive
/// real networks. With no cluster configured, cluster commands use an
/// embedded sandbox.
#[derive(Debug, Parser)]
#[command(name = "podlink", version, about, propagate_version = true)]
pub struct Cli {
    /// Options that select the cluster and logging.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted before or after the subcommand, as kubectl's are.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (else $KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace for this request.
    #[arg(short = 'n', long, global = true, value_name = "NS")]
    pub namespace: Option<String>,
    /// More logging on stderr: -v info, -vv debug, -vvv trace.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Timeout for ordinary API requests (e.g. 30s, 1m, or seconds).
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub request_timeout: Option<Duration>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a container.
    Exec(ExecArgs),
    /// Attach to the main process of a running container.
    Attach(AttachArgs),
    /// Forward local ports to a pod.
    PortForward(PortForwardArgs),
    /// List pods.
    Get(GetArgs),
    /// Watch pods, reconciling state changes.
    Watch(WatchArgs),
    /// Copy files to or from a container, verifying what was copied.
    Cp(CpArgs),
    /// Serve the embedded sandbox API server until stopped.
    Sandbox(SandboxArgs),
    /// Probe the configured cluster's streaming paths.
    Doctor(DoctorArgs),
    /// Print a shell completion script.
    Completion(CompletionArgs),
}

/// `--protocol` for exec and attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum StreamProtocol {
    /// WebSocket first, SPDY when the upgrade is refused.
    #[default]
    Auto,
    /// WebSocket only.
    Websocket,
    /// SPDY/3.1 only.
    Spdy,
}

/// `--on-cancel`: what happens to the remote process when podlink is
/// signalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnCancel {
    /// Ctrl-C over a terminal, else close stdin.
    Interrupt,
    /// Interrupt, then TERM the remote process tree, then KILL.
    Terminate,
    /// KILL the remote process tree at once.
    Kill,
    /// Leave it running.
    Detach,
}

/// `--on-disconnect`: what happens to the remote process when the connection
/// is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OnDisconnect {
    /// Leave it running.
    #[default]
    Detach,
    /// Reconnect once and terminate it.
    Terminate,
}

/// Keepalive options shared by the streaming commands.
#[derive(Debug, Args, Clone)]
pub struct KeepaliveArgs {
    /// Seconds between keepalive pings.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_seconds)]
    pub ping_interval: Duration,
    /// Seconds without any answer after which the peer counts as dead.
    #[arg(long, value_name = "SECS", default_value = "15", value_parser = parse_seconds)]
    pub pong_timeout: Duration,
}

/// What `exec` and `attach` share.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// Pass stdin to the container.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Allocate a terminal (raw mode locally); for attach, the container's
    /// stdin must be one.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The pod (`NAME` or `pod/NAME`).
    pub pod: String,
    /// The container (default: the pod's default container).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Which streaming protocol to use.
    #[arg(long, value_enum, default_value_t)]
    pub protocol: StreamProtocol,
    /// Keepalive.
    #[command(flatten)]
    pub keepalive: KeepaliveArgs,
}

/// `podlink exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Pod, container, stdio and connection.
    #[command(flatten)]
    pub session: SessionArgs,
    /// What to do with the remote process when podlink is stopped.
    #[arg(long, value_enum, default_value = "terminate")]
    pub on_cancel: OnCancel,
    /// What to do with the remote process when the connection is lost.
    #[arg(long, value_enum, default_value_t)]
    pub on_disconnect: OnDisconnect,
    /// Seconds each cancel step waits for the process to end before
    /// escalating (interrupt → TERM → KILL).
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = parse_seconds)]
    pub grace: Duration,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `podlink attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Pod, container, stdio and connection.
    #[command(flatten)]
    pub session: SessionArgs,
    /// What to do with the process when podlink is stopped.
    #[arg(long, value_enum, default_value = "detach")]
    pub on_cancel: OnCancel,
}

/// `--protocol` for port-forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ForwardProtocol {
    /// The WebSocket tunnel first, SPDY when refused.
    #[default]
    Auto,
    /// SPDY inside a WebSocket (`SPDY/3.1+portforward.k8s.io`).
    Tunnel,
    /// Plain SPDY/3.1.
    Spdy,
    /// The legacy `v4.channel.k8s.io` WebSocket port-forward.
    Websocket,
}

/// `podlink port-forward`.
#[derive(Debug, Args)]
pub struct PortForwardArgs {
    /// Local addresses to listen on (comma-separated; default localhost).
    #[arg(long, value_name = "ADDR", value_delimiter = ',')]
    pub address: Vec<String>,
    /// Which streaming protocol to use.
    #[arg(long, value_enum, default_value_t)]
    pub protocol: ForwardProtocol,
    /// Keepalive.
    #[command(flatten)]
    pub keepalive: KeepaliveArgs,
    /// `POD`, `pod/NAME`, `svc/NAME` or `deploy/NAME`.
    pub target: String,
    /// `[LOCAL:]REMOTE` port pairs.
    #[arg(required = true, value_name = "[LOCAL:]REMOTE")]
    pub ports: Vec<String>,
}

/// Output formats of `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GetOutput {
    /// More columns.
    Wide,
    /// The objects as JSON.
    Json,
    /// The objects as YAML.
    Yaml,
    /// `pod/NAME` per line.
    Name,
}

/// `podlink get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The resource type (`pods`).
    pub resource: String,
    /// One object's name.
    pub name: Option<String>,
    /// Label selector.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Keep watching after the list.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<GetOutput>,
}

/// Output formats of `watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchOutput {
    /// One `{"type":…,"object":…}` JSON object per line.
    Jsonl,
}

/// `podlink watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The resource type (`pods`).
    pub resource: String,
    /// Label selector.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<WatchOutput>,
}

/// `podlink cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Source: a local path or `[NS/]POD:PATH`.
    pub src: String,
    /// Destination: a local path or `[NS/]POD:PATH`.
    pub dst: String,
    /// The container (default: the pod's default container, or its only one).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
}

/// `podlink sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to serve on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Where to store the sandbox's state (pod working folders).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Start without the `demo` pod.
    #[arg(long)]
    pub no_demo: bool,
    /// Kubernetes version the sandbox reports on /version (`1.27` … `1.33`),
    /// so that version-dispatching clients pick that kubectl.
    #[arg(long, value_name = "MAJOR.MINOR", default_value = "1.32")]
    pub kube_version: String,
}

/// `podlink doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also measure how long an idle streaming connection survives.
    #[arg(long)]
    pub idle_probe: bool,
    /// Longest the idle probe waits (it passes if the connection survives).
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = parse_seconds)]
    pub idle_limit: Duration,
    /// How long each other probe may take.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    pub probe_timeout: Duration,
    /// The pod to probe streaming with (default: the first running pod).
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,
    /// The container of that pod.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
}

/// `podlink completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Parse the process arguments. kubectl's `-v=N` / `--v=N` spelling (which a
/// kubectl plugin invocation may carry) becomes the matching `-v` count.
#[must_use]
pub fn parse() -> Cli {
    Cli::parse_from(kubectl_verbosity(std::env::args_os()))
}

fn kubectl_verbosity(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut after_dashes = false;
    for arg in args {
        if !after_dashes {
            if arg == "--" {
                after_dashes = true;
            } else if let Some(level) = arg
                .to_str()
                .and_then(|a| a.strip_prefix("--v=").or_else(|| a.strip_prefix("-v=")))
                .and_then(|n| n.parse::<u8>().ok())
            {
                match level {
                    0 => {}
                    1..=4 => out.push("-v".into()),
                    5..=7 => out.push("-vv".into()),
                    _ => out.push("-vvv".into()),
                }
                continue;
            }
        }
        out.push(arg);
    }
    out
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("not a number of seconds: {text:?}"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("must be between 0 and 86400 seconds: {text:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// kubectl's `--request-timeout`: `0` (none), a number of seconds, or a
/// number with a unit `s`, `m` or `h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?} (use e.g. 30s, 2m, 1h)"))?;
    let secs = match unit {
        "s" => value,
        "m" => value.saturating_mul(60),
        "h" => value.saturating_mul(3600),
        _ => return Err(format!("invalid duration unit in {text:?} (use s, m or h)")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_verbosity_maps_to_counts_before_dashes_only() {
        let args = ["podlink", "-v=6", "exec", "demo", "--", "echo", "-v=6"].map(Into::into);
        let out = kubectl_verbosity(args);
        let out: Vec<_> = out.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            out,
            ["podlink", "-vv", "exec", "demo", "--", "echo", "-v=6"]
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("3d").is_err());
        assert!(parse_seconds("0").is_err());
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn exec_takes_command_after_dashes_and_globals_anywhere() {
        let cli = Cli::try_parse_from([
            "podlink",
            "exec",
            "demo",
            "-n",
            "ns1",
            "--kubeconfig",
            "/k",
            "--",
            "ls",
            "-l",
        ])
        .unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("ns1"));
        let Command::Exec(exec) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(exec.command, ["ls", "-l"]);
        assert_eq!(exec.on_cancel, OnCancel::Terminate);
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
