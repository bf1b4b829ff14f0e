//! `yonder up`'s settings: the command line, an optional TOML file, and
//! XDG defaults, merged in that order of precedence.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use yonder_link::{Impairment, LanConfig};

/// Options of `yonder up`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UpArgs {
    /// Nickname to announce (kept for later starts).
    #[arg(long)]
    pub nick: Option<String>,
    /// A link to run: `lan` (every up interface), `lan=IFACE` (repeat for
    /// several), `ble` (BlueZ's default adapter) or `ble=hciN`. Default:
    /// `lan`, and `ble` when BlueZ and an adapter are there.
    #[arg(long = "link", value_name = "KIND[=IFACE]")]
    pub links: Vec<String>,
    /// A neighbour to dial and keep dialling (HOST:PORT); repeatable.
    #[arg(long = "peer", value_name = "ADDR")]
    pub peers: Vec<SocketAddr>,
    /// Address for incoming LAN links (default 0.0.0.0:7463; port 0 for any).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Configuration file (default: $XDG_CONFIG_HOME/yonder/config.toml, if it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The TOML configuration file. Every field is optional; the command line wins.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Nickname.
    pub nick: Option<String>,
    /// The LAN link.
    #[serde(default)]
    pub lan: LanSection,
    /// The Bluetooth LE link.
    #[serde(default)]
    pub ble: BleSection,
    /// The mesh node.
    #[serde(default)]
    pub node: NodeSection,
}

/// `[ble]` in the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BleSection {
    /// Whether to run the BLE link (default: when BlueZ and an adapter are there).
    pub enabled: Option<bool>,
    /// Adapter by name, `hci0` (default: BlueZ's default adapter).
    pub adapter: Option<String>,
    /// Most BLE links at once, 1 to 8 (default 8).
    pub max_links: Option<usize>,
    /// Time between two frames on one link, in milliseconds (default 20).
    pub pacing_ms: Option<u64>,
    /// Device addresses never linked to (for tests that need a relay path).
    #[serde(default)]
    pub ignore: Vec<String>,
}

/// What the BLE link should be, once the flags and the file are merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BleSettings {
    /// Adapter by name; `None` for BlueZ's default.
    pub adapter: Option<String>,
    /// Most links at once.
    pub max_links: usize,
    /// Time between two frames on one link.
    pub pacing: Duration,
    /// Addresses never linked to.
    pub ignore: Vec<String>,
    /// Whether the user asked for it (then failing to start it stops the
    /// node); otherwise it runs when it can and is skipped with a notice.
    pub required: bool,
}

/// `[node]` in the configuration file: limits of the mesh node.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Frames a neighbour may send per second before its traffic is dropped.
    pub link_rate_per_sec: Option<u32>,
    /// Burst allowance on top of the rate.
    pub link_burst: Option<u32>,
    /// Mean time between announces, in seconds.
    pub announce_interval_s: Option<u64>,
    /// Copies of a courier envelope (spray-and-wait L).
    pub spray_copies: Option<u16>,
}

impl NodeSection {
    /// The core's configuration with this section applied.
    pub fn apply(&self, mut c: yonder_core::Config) -> yonder_core::Config {
        if let Some(r) = self.link_rate_per_sec {
            c.link_rate_per_sec = r.max(1);
        }
        if let Some(b) = self.link_burst {
            c.link_burst = b.max(1);
        }
        if let Some(s) = self.announce_interval_s {
            c.announce_interval = Duration::from_secs(s.max(1));
        }
        if let Some(l) = self.spray_copies {
            c.spray_copies = l.max(1);
        }
        c
    }
}

/// `[lan]` in the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanSection {
    /// Whether to run the LAN link at all (default true).
    pub enabled: Option<bool>,
    /// Interfaces for discovery (default: every up, multicast-capable one).
    pub interfaces: Option<Vec<String>>,
    /// Multicast group for beacons.
    pub group: Option<Ipv4Addr>,
    /// UDP port for beacons.
    pub port: Option<u16>,
    /// Whether to discover over IPv6 link-local too (default true).
    pub ipv6: Option<bool>,
    /// IPv6 multicast group for beacons.
    pub group_v6: Option<std::net::Ipv6Addr>,
    /// TCP listen address.
    pub listen: Option<SocketAddr>,
    /// Neighbours to dial.
    #[serde(default)]
    pub peers: Vec<SocketAddr>,
    /// Time between beacons, in milliseconds.
    pub beacon_interval_ms: Option<u64>,
    /// Impairment of sent frames, for tests (this kernel has no netem).
    pub impair: Option<ImpairSection>,
}

/// `[lan.impair]`: seeded impairment of every link's sending side.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpairSection {
    /// Probability a frame is lost, 0 to 1.
    #[serde(default)]
    pub loss: f64,
    /// Fixed delay, ms.
    #[serde(default)]
    pub delay_ms: u64,
    /// Extra uniform delay up to this, ms.
    #[serde(default)]
    pub jitter_ms: u64,
    /// Probability a frame is held back behind the next one.
    #[serde(default)]
    pub reorder: f64,
    /// Probability a frame is sent twice.
    #[serde(default)]
    pub duplicate: f64,
    /// Seed of the impairment's randomness.
    #[serde(default)]
    pub seed: u64,
}

/// Default TCP port for LAN links.
pub const DEFAULT_LISTEN_PORT: u16 = 7463;

/// Errors in the settings, all the user's to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A `--link` value is not understood.
    #[error("--link {0}: expected lan, lan=IFACE, ble or ble=hciN")]
    BadLink(String),
    /// A `[ble]` setting is out of range.
    #[error("[ble] {0}")]
    BadBle(&'static str),
    /// No home directory to put the data in.
    #[error("no data directory: set --data-dir, YONDER_DATA_DIR or HOME")]
    NoHome,
    /// A nickname that cannot be announced.
    #[error("nickname {0:?}: {1}")]
    BadNick(String, &'static str),
}

/// Longest nickname, in characters (Bitchat's announce allows 255 bytes;
/// screens do not).
pub const MAX_NICK_CHARS: usize = 32;

/// Checks a nickname a user gave.
pub fn check_nick(nick: &str) -> Result<(), ConfigError> {
    let bad = |why| Err(ConfigError::BadNick(nick.to_owned(), why));
    if nick.trim().is_empty() {
        return bad("must not be empty");
    }
    if nick.chars().count() > MAX_NICK_CHARS {
        return bad("at most 32 characters");
    }
    if nick.chars().any(char::is_control) {
        return bad("no control characters");
    }
    if nick.contains('#') {
        // `#` separates a nickname from a peer-ID suffix on the command line.
        return bad("no '#'");
    }
    Ok(())
}

/// The data directory: `--data-dir`/`YONDER_DATA_DIR`, then the file's
/// `data_dir`, then `$XDG_DATA_HOME/yonder`, then `~/.local/share/yonder`.
pub fn data_dir(flag: Option<&Path>, file: Option<&FileConfig>) -> Result<PathBuf, ConfigError> {
    if let Some(d) = flag {
        return Ok(d.to_owned());
    }
    if let Some(d) = file.and_then(|f| f.data_dir.clone()) {
        return Ok(d);
    }
    xdg_dir("XDG_DATA_HOME", ".local/share").map(|d| d.join("yonder"))
}

fn xdg_dir(var: &str, fallback: &str) -> Result<PathBuf, ConfigError> {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() && Path::new(&v).is_absolute() => Ok(PathBuf::from(v)),
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(fallback))
            .ok_or(ConfigError::NoHome),
    }
}

/// Reads the configuration file: `path` if given (it must exist), else the
/// XDG default if it exists, else an empty configuration.
pub fn load_file(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
    let (path, required) = match path {
        Some(p) => (p.to_owned(), true),
        None => match xdg_dir("XDG_CONFIG_HOME", ".config") {
            Ok(d) => (d.join("yonder").join("config.toml"), false),
            Err(_) => return Ok(FileConfig::default()),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(FileConfig::default());
        }
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    toml::from_str(&text).map_err(|e| ConfigError::Parse { path, message: e.to_string() })
}

/// The LAN driver's settings from the file and the flags; `None` if no LAN link is wanted.
pub fn lan_config(args: &UpArgs, file: &FileConfig) -> Result<Option<LanConfig>, ConfigError> {
    let mut interfaces: Option<Vec<String>> = file.lan.interfaces.clone();
    let mut enabled = file.lan.enabled.unwrap_or(true);
    if !args.links.is_empty() {
        enabled = false;
        let mut named = Vec::new();
        let mut all = false;
        for l in &args.links {
            match l.split_once('=') {
                None if l == "lan" => {
                    enabled = true;
                    all = true;
                }
                Some(("lan", iface)) if !iface.is_empty() => {
                    enabled = true;
                    named.push(iface.to_owned());
                }
                None if l == "ble" => {}
                Some(("ble", hci)) if !hci.is_empty() => {}
                _ => return Err(ConfigError::BadLink(l.clone())),
            }
        }
        interfaces = if all { None } else { Some(named) };
    }
    if !enabled {
        return Ok(None);
    }
    let mut c = LanConfig {
        interfaces,
        listen: args
            .listen
            .or(file.lan.listen)
            .unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, DEFAULT_LISTEN_PORT))),
        ..LanConfig::default()
    };
    if let Some(g) = file.lan.group {
        c.group = g;
    }
    if let Some(p) = file.lan.port {
        c.port = p;
    }
    if let Some(g) = file.lan.group_v6 {
        c.group_v6 = Some(g);
    }
    if file.lan.ipv6 == Some(false) {
        c.group_v6 = None;
    }
    if let Some(ms) = file.lan.beacon_interval_ms {
        c.beacon_interval = Duration::from_millis(ms);
    }
    c.static_peers = file.lan.peers.iter().chain(&args.peers).copied().collect();
    if let Some(i) = &file.lan.impair {
        let imp = Impairment {
            loss: i.loss,
            delay: Duration::from_millis(i.delay_ms),
            jitter: Duration::from_millis(i.jitter_ms),
            reorder: i.reorder,
            duplicate: i.duplicate,
        };
        c.impairment = Some((imp, i.seed));
    }
    Ok(Some(c))
}

/// The BLE link's settings from the file and the flags; `None` if no BLE
/// link is wanted. `--link` flags without `ble` turn it off.
pub fn ble_settings(args: &UpArgs, file: &FileConfig) -> Result<Option<BleSettings>, ConfigError> {
    let f = &file.ble;
    let mut adapter = f.adapter.clone();
    let (wanted, required) = if args.links.is_empty() {
        match f.enabled {
            Some(false) => (false, false),
            Some(true) => (true, true),
            None => (true, false),
        }
    } else {
        let mut named = false;
        for l in &args.links {
            if l == "ble" {
                named = true;
            } else if let Some(hci) = l.strip_prefix("ble=") {
                named = true;
                adapter = Some(hci.to_owned());
            }
        }
        (named, named)
    };
    if !wanted {
        return Ok(None);
    }
    let max_links = f.max_links.unwrap_or(8);
    if !(1..=8).contains(&max_links) {
        return Err(ConfigError::BadBle("max_links must be 1 to 8"));
    }
    let pacing_ms = f.pacing_ms.unwrap_or(20);
    if pacing_ms > 1000 {
        return Err(ConfigError::BadBle("pacing_ms must be at most 1000"));
    }
    if let Some(a) = &adapter
        && (a.is_empty() || a.len() > 32 || !a.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(ConfigError::BadBle("adapter names look like hci0"));
    }
    for a in &f.ignore {
        let ok = a.len() == 17
            && a.split(':').count() == 6
            && a.split(':').all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err(ConfigError::BadBle("ignore takes addresses like 00:AA:01:00:00:01"));
        }
    }
    Ok(Some(BleSettings {
        adapter,
        max_links,
        pacing: Duration::from_millis(pacing_ms),
        ignore: f.ignore.clone(),
        required,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args(links: &[&str]) -> UpArgs {
        UpArgs { links: links.iter().map(|s| s.to_string()).collect(), ..UpArgs::default() }
    }

    #[test]
    fn links_select_interfaces() {
        let f = FileConfig::default();
        assert_eq!(lan_config(&args(&[]), &f).unwrap().unwrap().interfaces, None);
        let c = lan_config(&args(&["lan=veth0", "lan=veth1"]), &f).unwrap().unwrap();
        assert_eq!(c.interfaces, Some(vec!["veth0".into(), "veth1".into()]));
        assert!(lan_config(&args(&["ble"]), &f).unwrap().is_none());
        assert!(lan_config(&args(&["ble=hci1", "lan"]), &f).unwrap().is_some());
        assert!(matches!(lan_config(&args(&["wifi"]), &f), Err(ConfigError::BadLink(_))));
        assert!(matches!(lan_config(&args(&["lan="]), &f), Err(ConfigError::BadLink(_))));
    }

    #[test]
    fn the_file_is_read_and_unknown_keys_are_refused() {
        let f: FileConfig = toml::from_str(
            "nick = \"relay\"\n[lan]\ninterfaces = [\"eth0\"]\npeers = [\"10.0.0.2:7463\"]\n\
             [lan.impair]\nloss = 0.1\nseed = 3\n",
        )
        .unwrap();
        let c = lan_config(&UpArgs::default(), &f).unwrap().unwrap();
        assert_eq!(c.interfaces, Some(vec!["eth0".into()]));
        assert_eq!(c.static_peers.len(), 1);
        assert_eq!(c.impairment.unwrap().1, 3);
        assert!(toml::from_str::<FileConfig>("nick = \"a\"\ncolour = 1\n").is_err());
        let n: FileConfig = toml::from_str("[node]\nlink_rate_per_sec = 5000\n").unwrap();
        assert_eq!(n.node.apply(yonder_core::Config::default()).link_rate_per_sec, 5000);
        let off: FileConfig = toml::from_str("[lan]\nenabled = false\n").unwrap();
        assert!(lan_config(&UpArgs::default(), &off).unwrap().is_none());
    }

    #[test]
    fn the_example_relay_configuration_is_valid() {
        let f: FileConfig = toml::from_str(include_str!("../../../../contrib/relay.toml")).unwrap();
        assert_eq!(f.nick.as_deref(), Some("relay"));
        let c = lan_config(&UpArgs::default(), &f).unwrap().unwrap();
        assert_eq!(c.listen.port(), DEFAULT_LISTEN_PORT);
        assert_eq!(f.node.apply(yonder_core::Config::default()).link_rate_per_sec, 400);
    }

    #[test]
    fn ble_runs_when_it_can_unless_the_links_say_otherwise() {
        let f = FileConfig::default();
        // Default: best effort on BlueZ's default adapter.
        let d = ble_settings(&args(&[]), &f).unwrap().unwrap();
        assert_eq!((d.adapter, d.required, d.max_links), (None, false, 8));
        // Naming links without ble turns it off; naming it makes it required.
        assert!(ble_settings(&args(&["lan"]), &f).unwrap().is_none());
        let b = ble_settings(&args(&["ble=hci2"]), &f).unwrap().unwrap();
        assert_eq!((b.adapter.as_deref(), b.required), (Some("hci2"), true));
        assert!(matches!(lan_config(&args(&["ble="]), &f), Err(ConfigError::BadLink(_))));
        let off: FileConfig = toml::from_str("[ble]\nenabled = false\n").unwrap();
        assert!(ble_settings(&args(&[]), &off).unwrap().is_none());
        let on: FileConfig = toml::from_str(
            "[ble]\nenabled = true\nadapter = \"hci1\"\nmax_links = 3\npacing_ms = 30\n\
             ignore = [\"00:AA:01:00:00:01\"]\n",
        )
        .unwrap();
        let s = ble_settings(&args(&[]), &on).unwrap().unwrap();
        assert_eq!((s.adapter.as_deref(), s.max_links, s.required), (Some("hci1"), 3, true));
        assert_eq!((s.pacing, s.ignore.len()), (Duration::from_millis(30), 1));
        for bad in
            ["max_links = 9", "pacing_ms = 5000", "adapter = \"hci0 x\"", "ignore = [\"00:AA\"]"]
        {
            let f: FileConfig = toml::from_str(&format!("[ble]\n{bad}\n")).unwrap();
            assert!(matches!(ble_settings(&args(&[]), &f), Err(ConfigError::BadBle(_))), "{bad}");
        }
    }

    #[test]
    fn nicknames_are_checked() {
        assert!(check_nick("alice").is_ok());
        assert!(check_nick(" ").is_err());
        assert!(check_nick("a\nb").is_err());
        assert!(check_nick("a#b").is_err());
        assert!(check_nick(&"x".repeat(33)).is_err());
    }
}
