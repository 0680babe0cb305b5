//! Kamailio 5.6 as registrar + proxy with digest auth, on 127.0.0.1:<free port> (UDP and TCP).
//!
//! Routing logic of the generated kamailio.cfg (see `config()`):
//! - OPTIONS to the proxy itself (no user part) → 200 (used for the readiness poll).
//! - In-dialog (To tag): `loose_route()` then relay; if the R-URI is still ours after that
//!   (linphone's GRUU contacts `sip:user@127.0.0.1;gr=...`) it is resolved with
//!   `lookup("location")`. In-dialog requests without our Route → 404 (like the stock cfg).
//! - CANCEL/ACK: relayed statefully when they match a transaction.
//! - Preloaded Route headers (outbound proxy) are removed from initial requests.
//! - Requests from a trusted service address (`trusted`, "host:port" or "host") skip auth.
//! - REGISTER: www digest (realm = To domain = 127.0.0.1, password from the htable
//!   `users`); auth user must equal the To user; saved in memory (usrloc db_mode 0).
//! - Other initial requests whose From is a local domain: proxy digest (407), the auth user
//!   must equal the From user. Foreign From → only to our domain, else 403.
//! - `record_route()` for INVITE, SUBSCRIBE and REFER.
//! - Static routes (`routes`, regex on the R-URI user → "host:port"): `$du` is set and the
//!   request relayed without any registration of the target.
//! - R-URI in our domain → `lookup("location")` (404 unknown user, 480 known but not
//!   registered), else relayed to the R-URI.
//!
//! Our domain ("myself") is `127.0.0.1:<port>` and `127.0.0.1` without a port (i.e. 5060):
//! UAs may use AOR `sip:user@127.0.0.1` with outbound proxy `sip:127.0.0.1:<port>`, or AOR
//! `sip:user@127.0.0.1:<port>` directly. Nothing listens on 5060. Aliases are unquoted (a
//! quoted alias is a host name: `uri==myself` never matches and auth is silently skipped).

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::ports::free_port_block;
use super::process::{PeerProcess, TempDir, require_tool, tail_file, unique_token};

pub struct Kamailio {
    proc: PeerProcess,
    port: u16,
    cfg: PathBuf,
    tmp: TempDir,
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Kamailio {
    /// Registrar/proxy for `users` = [(user, password)], realm/domain 127.0.0.1.
    pub fn start(users: &[(&str, &str)]) -> Kamailio {
        Self::start_full(users, &[], &[])
    }

    /// Like `start`, plus static routes: [(regex on the R-URI user, "host:port")], e.g.
    /// `("^7[0-9]{3}$", "127.0.0.1:5099")`. Matching requests get `$du = sip:host:port` and
    /// are relayed (after the caller authenticated) without the target registering.
    pub fn start_with_routes(users: &[(&str, &str)], routes: &[(&str, &str)]) -> Kamailio {
        Self::start_full(users, routes, &[])
    }

    /// Full form: `trusted` lists service addresses ("host:port" or "host") whose requests
    /// are relayed without authentication (e.g. the park service calling users back).
    pub fn start_full(users: &[(&str, &str)], routes: &[(&str, &str)], trusted: &[&str]) -> Kamailio {
        let bin = require_tool("kamailio");
        let mut last_err = String::new();
        // A port found free can be taken by someone else before kamailio binds it: retry.
        for _attempt in 0..3 {
            let tmp = TempDir::new("kamailio");
            let port = free_port_block(1);
            let cfg = tmp.join("kamailio.cfg");
            fs::write(&cfg, config(port, users, routes, trusted)).expect("write kamailio.cfg");
            let run = tmp.join("run");
            fs::create_dir_all(&run).expect("create kamailio run dir");
            let log = tmp.join("kamailio.log");
            let logf = fs::File::create(&log).expect("create kamailio.log");
            let mut cmd = Command::new(&bin);
            cmd.arg("-f").arg(&cfg).args(["-DD", "-E", "-Y"]).arg(&run);
            cmd.args(["-m", "32", "-M", "4", "-w"]).arg(tmp.path());
            cmd.stdin(Stdio::null()).stdout(logf.try_clone().expect("dup log")).stderr(logf);
            let mut proc = PeerProcess::spawn("kamailio", cmd, log.clone(), Duration::from_secs(2));
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut ready = false;
            while Instant::now() < deadline {
                if proc.exited().is_some() {
                    break;
                }
                if options_ping(port, Duration::from_millis(200)).is_some() {
                    ready = true;
                    break;
                }
            }
            if ready {
                return Kamailio { proc, port, cfg, tmp };
            }
            let how = match proc.exited() {
                Some(st) => format!("exited at startup ({st})"),
                None => "did not answer OPTIONS within 10 s".to_string(),
            };
            last_err = format!("{how}; log {}:\n{}", log.display(), tail_file(&log, 40));
            let bind_problem = last_err.contains("bind") || last_err.contains("in use");
            eprintln!("[harness] kamailio on port {port} {last_err}");
            drop(proc);
            if !bind_problem {
                // Keep this temp dir for inspection and stop: it will not get better.
                let path = tmp.path().to_path_buf();
                std::mem::forget(tmp);
                panic!("[harness] kamailio on 127.0.0.1:{port} (temp dir kept: {}) {last_err}", path.display());
            }
        }
        panic!("[harness] kamailio failed to start 3 times; {last_err}");
    }

    /// UDP/TCP port Kamailio listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
    /// The SIP domain and digest realm: "127.0.0.1".
    pub fn domain(&self) -> &'static str {
        super::DOMAIN
    }
    /// "sip:127.0.0.1:<port>;lr" — what UAs should use as outbound proxy.
    pub fn proxy_uri(&self) -> String {
        format!("sip:127.0.0.1:{};lr", self.port)
    }
    /// AOR of a user in this domain: "sip:<user>@127.0.0.1".
    pub fn aor(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1")
    }
    pub fn log_path(&self) -> &Path {
        &self.proc.log
    }
    /// Whole log so far (every request/reply is logged with `$mb`).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.proc.log).unwrap_or_default()).into_owned()
    }
    pub fn cfg_path(&self) -> &Path {
        &self.cfg
    }
    pub fn temp_dir(&self) -> &Path {
        self.tmp.path()
    }
    /// Sends an OPTIONS to the proxy and returns the status line of the response.
    pub fn ping(&self) -> Option<String> {
        options_ping(self.port, Duration::from_secs(1))
    }
    /// Panics (with the log tail) if the process died.
    pub fn assert_running(&mut self) {
        self.proc.assert_running("running");
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.proc.report_if_panicking();
        self.proc.kill();
    }
}

/// One OPTIONS over UDP with a fresh branch; returns the response's status line.
pub fn options_ping(port: u16, timeout: Duration) -> Option<String> {
    let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
    let local = sock.local_addr().ok()?;
    sock.set_read_timeout(Some(timeout)).ok()?;
    let tok = unique_token();
    let msg = format!(
        "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-h{tok};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:harness@127.0.0.1>;tag=h{tok}\r\n\
         To: <sip:127.0.0.1:{port}>\r\n\
         Call-ID: h{tok}@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    sock.send_to(msg.as_bytes(), ("127.0.0.1", port)).ok()?;
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]);
    let line = text.lines().next()?.to_string();
    line.starts_with("SIP/2.0 ").then_some(line)
}

/// Generates kamailio.cfg.
pub fn config(port: u16, users: &[(&str, &str)], routes: &[(&str, &str)], trusted: &[&str]) -> String {
    let mpath = [
        "/usr/lib/x86_64-linux-gnu/kamailio/modules",
        "/usr/lib/kamailio/modules",
        "/usr/local/lib64/kamailio/modules",
    ]
    .into_iter()
    .find(|p| Path::new(p).join("tm.so").exists())
    .unwrap_or("/usr/lib/x86_64-linux-gnu/kamailio/modules");
    let user_lines: String = users.iter().map(|(u, p)| format!("    $sht(users=>{u}) = {};\n", quote(p))).collect();
    let trusted_cond: Vec<String> = trusted
        .iter()
        .map(|t| match t.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => {
                format!("($si == {} && $sp == {p})", quote(h))
            }
            _ => format!("($si == {})", quote(t)),
        })
        .collect();
    let trusted_block = if trusted_cond.is_empty() {
        String::new()
    } else {
        format!(
            "    if ({}) {{\n        xlog(\"L_INFO\", \"trusted source $si:$sp\\n\");\n        $var(trusted) = 1;\n    }}\n",
            trusted_cond.join(" || ")
        )
    };
    let route_lines: String = routes
        .iter()
        .map(|(re, target)| {
            let target = target.strip_prefix("sip:").unwrap_or(target);
            format!(
                "    if ($rU =~ {}) {{\n        $du = {};\n        xlog(\"L_INFO\", \"static route $rU -> $du\\n\");\n        route(RELAY);\n        exit;\n    }}\n",
                quote(re),
                quote(&format!("sip:{target}"))
            )
        })
        .collect();
    CFG_TEMPLATE
        .replace("@PORT@", &port.to_string())
        .replace("@MPATH@", mpath)
        .replace("@USERS@", &user_lines)
        .replace("@TRUSTED@", &trusted_block)
        .replace("@ROUTES@", &route_lines)
}

const CFG_TEMPLATE: &str = r#"#!KAMAILIO
# generated by tests/common/kamailio.rs
debug=2
log_stderror=yes
memdbg=5
memlog=5
children=2
tcp_children=2
auto_aliases=no
listen=udp:127.0.0.1:@PORT@
listen=tcp:127.0.0.1:@PORT@
alias=127.0.0.1:@PORT@
alias=127.0.0.1:5060
dns=no
rev_dns=no
use_dns_cache=no
tcp_connection_lifetime=3605

mpath="@MPATH@"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "auth.so"
loadmodule "nathelper.so"
loadmodule "htable.so"

modparam("htable", "htable", "users=>size=6;")
modparam("usrloc", "db_mode", 0)
modparam("rr", "enable_full_lr", 1)
modparam("rr", "append_fromtag", 1)
modparam("registrar", "max_expires", 3600)
modparam("registrar", "min_expires", 10)
modparam("auth", "nonce_expire", 300)
modparam("tm", "fr_timer", 5000)
modparam("tm", "fr_inv_timer", 60000)

event_route[htable:mod-init] {
@USERS@}

request_route {
    xlog("L_INFO", "REQ $rm $ru from $proto:$si:$sp\n$mb\n");
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (!sanity_check("17895", "7")) { xlog("L_WARN", "malformed request from $si:$sp\n"); exit; }

    if (has_totag()) { route(WITHINDLG); exit; }

    if (is_method("CANCEL")) {
        if (t_check_trans()) { route(RELAY); }
        exit;
    }
    if (is_method("ACK")) {
        if (t_check_trans()) { route(RELAY); }
        exit;
    }
    t_check_trans();

    # preloaded Route headers (outbound proxy = us)
    remove_hf("Route");

    if (is_method("OPTIONS") && uri==myself && $rU==$null) {
        sl_send_reply("200", "OK");
        exit;
    }

    $var(trusted) = 0;
@TRUSTED@
    if (is_method("REGISTER")) { route(REGISTRAR); exit; }

    if ($var(trusted) == 0) { route(AUTH); }

    if (is_method("INVITE|SUBSCRIBE|REFER")) { record_route(); }

    route(STATIC);

    if (uri==myself) { route(LOCATION); exit; }
    route(RELAY);
}

route[STATIC] {
@ROUTES@    return;
}

route[REGISTRAR] {
    if (!(to_uri==myself)) { sl_send_reply("403", "Not my domain"); exit; }
    if ($au == $null || $sht(users=>$au) == $null || !pv_www_authenticate("$td", "$sht(users=>$au)", "0")) {
        xlog("L_INFO", "REGISTER challenge for $tu (auth user: $au)\n");
        www_challenge("$td", "0");
        exit;
    }
    if ($au != $tU) { sl_send_reply("403", "Auth user does not match To user"); exit; }
    consume_credentials();
    if (!save("location")) { sl_reply_error(); }
    exit;
}

route[AUTH] {
    if (from_uri==myself) {
        if ($au == $null || $sht(users=>$au) == $null || !pv_proxy_authenticate("$fd", "$sht(users=>$au)", "0")) {
            xlog("L_INFO", "$rm challenge for $fu (auth user: $au)\n");
            proxy_challenge("$fd", "0");
            exit;
        }
        if ($au != $fU) { sl_send_reply("403", "Auth user does not match From user"); exit; }
        consume_credentials();
        return;
    }
    if (!(uri==myself)) { sl_send_reply("403", "Relay forbidden"); exit; }
}

route[LOCATION] {
    if (!lookup("location")) {
        if (is_method("ACK")) { exit; }
        t_newtran();
        if ($sht(users=>$rU) != $null) {
            t_reply("480", "Temporarily Unavailable");
        } else {
            t_reply("404", "Not Found");
        }
        exit;
    }
    route(RELAY);
}

route[WITHINDLG] {
    if (loose_route()) {
        if (uri==myself && $rU != $null) {
            # e.g. a GRUU (sip:user@127.0.0.1;gr=...) as remote target
            if (!lookup("location")) {
                if (is_method("ACK")) { exit; }
                sl_send_reply("404", "Not here");
                exit;
            }
        }
        route(RELAY);
        exit;
    }
    if (is_method("ACK")) {
        if (t_check_trans()) { route(RELAY); }
        exit;
    }
    xlog("L_INFO", "in-dialog $rm without our Route: 404\n");
    sl_send_reply("404", "Not here");
    exit;
}

route[RELAY] {
    if (!t_relay()) { sl_reply_error(); }
    exit;
}

onreply_route {
    xlog("L_INFO", "REPLY $rs $rr from $proto:$si:$sp\n$mb\n");
}
"#;
