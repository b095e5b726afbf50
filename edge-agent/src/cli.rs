//! The `vigil-agent` command line: its subcommands and their flags, as
//! docs/ARCHITECTURE.md#commands names them. A subcommand appears here only once it does its job.

use std::path::PathBuf;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::Parity;

/// Vigil edge agent: ingests field devices and cameras on a facility gateway, detects
/// anomalies and forwards alerts to the command hub.
#[derive(Debug, Parser)]
#[command(name = "vigil-agent", version, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent: poll devices, ingest MQTT sensors, serve metrics.
    Run {
        /// The agent's config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Log format: `text` for a terminal, `json` for a log collector.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
    },
    /// Validate the config and every profile it names; run nothing. Exits 2 on problems,
    /// each named with its file, line and key.
    Check {
        /// The agent's config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Enroll this gateway with its hub: make a key pair here (the key never leaves the
    /// gateway), send a certificate request with a one-time token from the hub's operator,
    /// check the answer against the CA the token pins, then write `[tls] ca/cert/key` and
    /// point `[uplink] url` at the hub's mTLS broker. Exits 2 on a bad token or config, 1
    /// when the hub refuses or cannot be reached (nothing is written then).
    Enroll {
        /// The hub's HTTP address, e.g. https://hub.example:8080 (plain http:// only on
        /// loopback or a trusted segment).
        #[arg(long, value_name = "URL")]
        hub: String,
        /// `-`: the one-time token from `vigil-hub enroll-token --node ID` (VGL1.…) is read
        /// from standard input (paste it when asked, or `<<<"$TOKEN"` in a script). A token
        /// given here instead is refused: the process list and the shell history would show it.
        #[arg(long, value_name = "-")]
        token: String,
        /// The agent's config file: its `[node] id` is enrolled, its `[tls]` paths written,
        /// its `[uplink] url` updated.
        #[arg(long, value_name = "FILE", default_value = "/etc/vigil/agent.toml")]
        config: PathBuf,
        /// How long to wait for the hub.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
        /// Enroll even though this gateway holds a valid certificate from this hub (a new
        /// key; the old certificate stays valid until the hub revokes it).
        #[arg(long)]
        force: bool,
    },
    /// Device profiles: the YAML description of a device model's points and alarm rules.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Modbus tools for installers: read a device through its profile, find unit ids.
    #[command(subcommand)]
    Modbus(ModbusCommand),
    /// Signed update bundles: apply one, show what is installed.
    #[command(subcommand)]
    Update(UpdateCommand),
    /// Run the current version under supervision (what the init system starts): forward
    /// SIGTERM/SIGINT, keep a new version once it has run healthy for `[update] trial`, fall
    /// back to the previous version if it does not, restart a crashed one with backoff.
    Supervise {
        /// The agent's config file (`[update]` and `[store]` are read from it; the agent runs
        /// with it unless the running version's bundle carried its own config).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Log format of the supervisor and the agent: `text` or `json`.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UpdateCommand {
    /// Verify a bundle (trusted signature, every file intact, newer than what is installed)
    /// and install it as the current version, on trial. Exits 1 when it is refused (nothing
    /// changes), 2 when the config or a trusted key file is invalid.
    Apply {
        /// The bundle from `vigil-fw pack` + `vigil-fw sign`.
        #[arg(value_name = "BUNDLE")]
        bundle: PathBuf,
        /// The agent's config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Show the current and previous versions, the trial, the rollback floor and the last
    /// fallback.
    Status {
        /// The agent's config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModbusCommand {
    /// One scan of one device: every point of the profile with its value and unit.
    Read {
        #[command(flatten)]
        target: TargetArgs,
        /// Unit id (slave address).
        #[arg(long, default_value_t = 1)]
        unit: u8,
        /// The device's profile (`device-profiles/*.yaml`).
        #[arg(long, value_name = "FILE")]
        profile: PathBuf,
        /// One JSON object per line: `{"point": …, "value": …, "unit": …}`.
        #[arg(long)]
        json: bool,
    },
    /// Find the unit ids that answer at an address or on a serial bus.
    Scan {
        #[command(flatten)]
        target: TargetArgs,
        /// Unit ids to probe: a range like 1-247 or a list like 1,2,10-20.
        #[arg(long, default_value = "1-247")]
        units: String,
    },
}

/// Where a Modbus command connects: `--addr HOST:PORT` (TCP) or `--serial PORT` (RTU).
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Modbus TCP device or gateway, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", required_unless_present = "serial")]
    pub addr: Option<String>,
    /// Modbus RTU serial port, e.g. /dev/ttyUSB0.
    #[arg(long, value_name = "PORT", conflicts_with = "addr")]
    pub serial: Option<PathBuf>,
    /// RTU: baud rate.
    #[arg(long, default_value_t = 9600)]
    pub baud: u32,
    /// RTU: parity (none, even, odd).
    #[arg(long, default_value = "none", value_parser = parse_parity)]
    pub parity: Parity,
    /// RTU: stop bits.
    #[arg(long, default_value_t = 1)]
    pub stop_bits: u8,
    /// How long to wait for each answer, e.g. 500ms, 2s.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub timeout: Duration,
}

fn parse_parity(s: &str) -> Result<Parity, String> {
    match s {
        "none" => Ok(Parity::None),
        "even" => Ok(Parity::Even),
        "odd" => Ok(Parity::Odd),
        _ => Err(format!("{s:?}: use none, even or odd")),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime_serde::re::humantime::parse_duration(s)
        .map_err(|e| format!("{s:?}: {e} (write e.g. 500ms or 2s)"))
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Validate device profiles; every problem is reported with its file, line and key.
    /// Exits 0 when all are valid, 2 otherwise.
    Validate {
        /// Profile files (`*.yaml`) to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}
