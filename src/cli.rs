//! `orbitphone cli`: the engine on stdin/stdout. Commands are lines on stdin, events
//! are JSON objects on stdout (one per line), logs go to stderr. A bad command is an
//! `error` event; EOF on stdin un-registers, hangs up and exits cleanly.

use crate::media::srtp::SrtpMode;
use crate::net::dns;
use crate::net::media_task::AudioIo;
use crate::net::phone_driver::{self, PhoneConfig};
use crate::phone::Command;
use crate::phone::Event;
use crate::phone::account::{Account, uri_hostport};
use crate::sip::transport::Transport;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use tokio::io::AsyncBufReadExt;

/// Flags of `orbitphone cli`.
#[derive(Debug, Clone, clap::Args)]
pub struct CliArgs {
    /// Address of record, e.g. sip:alice@example.com
    #[arg(long)]
    pub account: String,
    /// Name of the environment variable holding the password (never pass it on the command line).
    #[arg(long)]
    pub password_env: Option<String>,
    /// Digest user name when it differs from the AOR user.
    #[arg(long)]
    pub auth_user: Option<String>,
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Signalling transport.
    #[arg(long, default_value = "udp")]
    pub transport: String,
    /// Outbound proxy, e.g. sip:127.0.0.1:5060 (default: the AOR's domain).
    #[arg(long)]
    pub proxy: Option<String>,
    /// Local SIP address to bind.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Do not REGISTER (direct IP calls).
    #[arg(long)]
    pub no_register: bool,
    /// Registration lifetime in seconds.
    #[arg(long, default_value_t = 600)]
    pub expires: u32,
    /// Answer incoming calls automatically.
    #[arg(long)]
    pub auto_answer: bool,
    /// Read the microphone from this WAV file (loops).
    #[arg(long)]
    pub audio_in: Option<PathBuf>,
    /// Write what we hear to this WAV file.
    #[arg(long)]
    pub audio_out: Option<PathBuf>,
    /// Microphone by id or name (see the `devices` command; default: the system's).
    #[arg(long)]
    pub input_device: Option<String>,
    /// Speaker by id or name (default: the system's).
    #[arg(long)]
    pub output_device: Option<String>,
    /// Ringtone device by id or name (default: ring on the speaker).
    #[arg(long)]
    pub ring_device: Option<String>,
    /// Do not open sound devices at all (calls send silence unless --audio-in is given).
    #[arg(long)]
    pub no_sound_card: bool,
    /// Extra CA certificate (PEM) for TLS.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Offer Opus as well as G.711.
    #[arg(long)]
    pub opus: bool,
    /// SRTP (SDES, AES_CM_128_HMAC_SHA1_80): off, optional (RTP/AVP + a=crypto, best effort) or mandatory (RTP/SAVP).
    #[arg(long, default_value = "off", value_parser = parse_srtp)]
    pub srtp: SrtpMode,
    /// OPTIONS keepalive interval on UDP, seconds (0 = off).
    #[arg(long, default_value_t = 30)]
    pub keepalive: u64,
    /// Park service URI (default sip:park@DOMAIN).
    #[arg(long)]
    pub park_uri: Option<String>,
    /// Park by transferring to this extension (e.g. 700 on Asterisk, a valet_park
    /// extension on FreeSWITCH) instead of using the Orbit park service.
    #[arg(long)]
    pub park_extension: Option<String>,
    /// With --park-extension: call the extension first (you hear the slot), then `park`
    /// again completes an attended transfer.
    #[arg(long)]
    pub park_attended: bool,
    /// DNS server for SRV/A lookups, IP:PORT (default: the first nameserver of
    /// /etc/resolv.conf). Given, only it is asked (no system resolver). For tests.
    #[arg(long, hide = true)]
    pub dns_server: Option<SocketAddr>,
}

fn parse_srtp(s: &str) -> Result<SrtpMode, String> {
    s.parse()
}

/// Resolve `sip:host:port` / `host:port` / `host` to a socket address.
pub async fn resolve(target: &str, transport: Transport) -> Result<SocketAddr, String> {
    resolve_via(target, transport, None).await
}

/// Like [`resolve`], asking `dns_server` (default: /etc/resolv.conf's) for host names.
///
/// IP literals are used as they are. A host name without a port is looked up as RFC 3263
/// says (SRV, then A/AAAA: [`dns::resolve_sip`]); `localhost` goes to the system
/// resolver. `host:port` goes to the system resolver as well, unless a `dns_server` is
/// given (then it is that server's A/AAAA).
pub async fn resolve_via(
    target: &str,
    transport: Transport,
    dns_server: Option<SocketAddr>,
) -> Result<SocketAddr, String> {
    let hp = if target.contains(':') && (target.starts_with("sip:") || target.starts_with("sips:")) {
        uri_hostport(target).unwrap_or_default()
    } else {
        target.to_string()
    };
    let is_ip = hp.parse::<SocketAddr>().is_ok()
        || hp.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(&hp).parse::<IpAddr>().is_ok();
    let has_port = hp.contains(':') && !hp.starts_with('[') && hp.matches(':').count() == 1;
    if is_ip || (has_port && dns_server.is_none()) {
        return system_resolve(&hp, transport).await;
    }
    let addrs = dns::resolve_sip(&hp, transport, dns_server).await?;
    tracing::debug!("{hp} ({transport}) resolves to {addrs:?}");
    addrs.first().copied().ok_or_else(|| format!("cannot resolve {hp}: no address"))
}

/// `host:port` / `host` / IP literal through the system resolver (`getaddrinfo`).
async fn system_resolve(hp: &str, transport: Transport) -> Result<SocketAddr, String> {
    let default_port = if transport == Transport::Tls { 5061 } else { 5060 };
    let with_port = if hp.parse::<SocketAddr>().is_ok()
        || (hp.contains(':') && !hp.starts_with('[') && hp.matches(':').count() == 1)
    {
        hp.to_string()
    } else {
        format!("{hp}:{default_port}")
    };
    let mut addrs = tokio::net::lookup_host(&with_port).await.map_err(|e| format!("cannot resolve {hp}: {e}"))?;
    addrs.next().ok_or_else(|| format!("cannot resolve {hp}: no address"))
}

/// Build the account from flags (resolving the proxy or registrar).
pub async fn account_from_args(args: &CliArgs) -> Result<Account, String> {
    let transport = Transport::parse(&args.transport)
        .ok_or_else(|| format!("--transport: {:?} is not udp, tcp or tls", args.transport))?;
    let aor = if args.account.starts_with("sip:") || args.account.starts_with("sips:") {
        args.account.clone()
    } else {
        format!("sip:{}", args.account)
    };
    if rsipstack::sip::parse_uri(&aor).is_err() || !aor.contains('@') {
        return Err(format!("--account: {aor:?} is not a SIP address like sip:alice@example.com"));
    }
    let password = match &args.password_env {
        Some(var) => {
            Some(std::env::var(var).map_err(|_| format!("--password-env: environment variable {var} is not set"))?)
        }
        None => None,
    };
    let user = crate::phone::account::uri_user(&aor).unwrap_or_default();
    let outbound = match &args.proxy {
        Some(p) => Some(resolve_via(p, transport, args.dns_server).await?),
        None if !args.no_register => {
            Some(resolve_via(&uri_hostport(&aor).unwrap_or_default(), transport, args.dns_server).await?)
        }
        None => None,
    };
    Ok(Account {
        aor,
        display_name: args.name.clone(),
        auth_user: args.auth_user.clone().unwrap_or(user),
        password,
        transport,
        outbound,
        register: !args.no_register,
        expires: args.expires,
        auto_answer: args.auto_answer,
        park_uri: args.park_uri.clone(),
        keepalive_secs: args.keepalive,
        park_extension: args.park_extension.clone().filter(|e| !e.trim().is_empty()),
        park_attended: args.park_attended,
    })
}

fn print_event(ev: &Event) {
    let line = serde_json::to_string(ev)
        .unwrap_or_else(|e| format!(r#"{{"event":"error","message":"cannot encode event: {e}"}}"#));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Run the CLI until `quit` or EOF.
pub async fn run(args: CliArgs) -> anyhow::Result<()> {
    let account = account_from_args(&args).await.map_err(anyhow::Error::msg)?;
    let audio = AudioIo {
        input: args.audio_in.clone(),
        output: args.audio_out.clone(),
        opus: args.opus,
        srtp: args.srtp,
        echo: false,
        sound_card: !args.no_sound_card,
        input_device: args.input_device.clone(),
        output_device: args.output_device.clone(),
        ring_device: args.ring_device.clone(),
    };
    let cfg = PhoneConfig { account, listen: args.listen, ca_file: args.ca.clone(), audio };
    let mut phone = phone_driver::start(cfg).await.map_err(anyhow::Error::msg)?;
    let commands = phone.commands.clone();
    let stdin_task = tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match Command::parse_line(&line) {
                Ok(Some(cmd)) => {
                    let quit = cmd == Command::Quit;
                    if commands.send(cmd).await.is_err() || quit {
                        return;
                    }
                }
                Ok(None) => {}
                Err(message) => print_event(&Event::Error { message, call: None }),
            }
        }
        // EOF: dropping the sender makes the engine quit cleanly.
    });
    drop(phone.commands);
    while let Some(ev) = phone.events.recv().await {
        let stop = ev == Event::Stopped;
        print_event(&ev);
        if stop {
            break;
        }
    }
    stdin_task.abort();
    Ok(())
}
