//! baresip 1.0 (Debian package baresip-core), headless, controlled over ctrl_tcp.
//!
//! - Started as `baresip -f <tempdir>` with stdin /dev/null, HOME = temp dir, log in
//!   `<tempdir>/baresip.log`; ctrl_tcp traffic (commands, responses, events) is logged in
//!   `<tempdir>/ctrl.log`.
//! - Ports: SIP UDP+TCP on P, TLS on P+1 (baresip always binds it), ctrl_tcp on P+2.
//! - The account is NOT in the accounts file: the harness first connects to ctrl_tcp and
//!   then creates the UA with the `uanew <account line>` command, so REGISTERING /
//!   REGISTER_OK / REGISTER_FAIL events are never missed (ctrl_tcp only forwards events to a
//!   connected client, and registration at startup would race the connection).
//! - No sound card: `audio_player aubridge,nil`, `audio_alert aubridge,nil`,
//!   `audio_source aufile,<wav>` (mono 16-bit 8 kHz; the call ends when the WAV ends, so the
//!   default source is 120 s of silence generated into the temp dir).
//! - Received audio is recorded by module sndfile into `record_dir()` as
//!   `dump-<timestamp>-dec.wav` (what was decoded = received) and `...-enc.wav` (sent).
//!
//! Event names seen on ctrl_tcp (field "type"): REGISTERING, REGISTER_OK (param "200 OK"),
//! REGISTER_FAIL (param e.g. "401 Unauthorized"), CALL_INCOMING, CALL_RINGING,
//! CALL_PROGRESS, CALL_LOCAL_SDP, CALL_REMOTE_SDP, CALL_ESTABLISHED, CALL_RTPESTAB,
//! CALL_RTCP, CALL_CLOSED (param = reason, e.g. "Connection reset by user"/"... by peer" or
//! the final status like "407 Proxy Authentication Required"), TRANSFER (on the
//! transferee; param = Refer-To URI, id = the original call). CALL_INCOMING is only sent
//! in manual answer mode (auto-answer goes straight to CALL_ESTABLISHED). Every call event
//! has "id" (the SIP Call-ID), "direction", "peeruri" and "accountaor".

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::ports::free_port_block;
use super::process::{PeerProcess, TempDir, require_tool, tail_file};
use super::wav::write_silence_wav;

/// Audio codecs baresip loads (and therefore offers/accepts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Codecs {
    /// PCMU and PCMA only.
    #[default]
    G711,
    /// opus/48000/2 preferred, then PCMU, PCMA.
    OpusAndG711,
}

/// Options for `Baresip::start`. Build with `BaresipOpts::registered(..)` or
/// `BaresipOpts::direct(..)` and the builder methods, or fill the fields.
#[derive(Clone, Debug, Default)]
pub struct BaresipOpts {
    /// SIP user name; the AOR is sip:<user>@127.0.0.1.
    pub user: String,
    /// Digest password (auth_pass).
    pub password: Option<String>,
    /// Kamailio port to register with (outbound proxy sip:127.0.0.1:<port>). None = no
    /// registration: call it directly at `uri()` = sip:<user>@127.0.0.1:<sip_port>.
    pub registrar_port: Option<u16>,
    /// answermode=auto (answers incoming calls itself) instead of manual (`accept`).
    pub auto_answer: bool,
    /// WAV to send (mono, 16-bit, 8 kHz). None = 120 s of silence.
    pub audio_source: Option<PathBuf>,
    /// Record received audio with module sndfile (into `record_dir` or `<tempdir>/rec`).
    pub record: bool,
    /// Where to record (implies `record`); default `<tempdir>/rec`.
    pub record_dir: Option<PathBuf>,
    pub codecs: Codecs,
    /// mediaenc=srtp-mand (SDES-SRTP required).
    pub srtp_mandatory: bool,
    /// SIP transport of the account ("udp" default, "tcp", "tls").
    pub transport: Option<String>,
    /// Extra lines appended to the baresip `config` file.
    pub extra_config: Vec<String>,
    /// Extra `;key=value` account parameters (without a leading ';').
    pub extra_account_params: Vec<String>,
}

impl BaresipOpts {
    /// A UA registering as `user`/`password` with the Kamailio on `kamailio_port`.
    pub fn registered(user: &str, password: &str, kamailio_port: u16) -> Self {
        BaresipOpts {
            user: user.into(),
            password: Some(password.into()),
            registrar_port: Some(kamailio_port),
            ..Default::default()
        }
    }
    /// A UA without registration (peer-to-peer calls to/from its `uri()`).
    pub fn direct(user: &str) -> Self {
        BaresipOpts { user: user.into(), ..Default::default() }
    }
    pub fn auto_answer(mut self, on: bool) -> Self {
        self.auto_answer = on;
        self
    }
    pub fn audio_source(mut self, wav: impl Into<PathBuf>) -> Self {
        self.audio_source = Some(wav.into());
        self
    }
    /// Record received audio into `<tempdir>/rec` (see `Baresip::received_wavs`).
    pub fn record(mut self, on: bool) -> Self {
        self.record = on;
        self
    }
    pub fn record_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.record_dir = Some(dir.into());
        self.record = true;
        self
    }
    pub fn codecs(mut self, c: Codecs) -> Self {
        self.codecs = c;
        self
    }
    pub fn srtp_mandatory(mut self, on: bool) -> Self {
        self.srtp_mandatory = on;
        self
    }
    pub fn transport(mut self, t: &str) -> Self {
        self.transport = Some(t.into());
        self
    }
    pub fn extra_config(mut self, line: &str) -> Self {
        self.extra_config.push(line.into());
        self
    }
    pub fn account_param(mut self, param: &str) -> Self {
        self.extra_account_params.push(param.trim_start_matches(';').into());
        self
    }
}

#[derive(Default)]
struct CtrlState {
    /// (event, already returned by a wait)
    events: Vec<(Value, bool)>,
    responses: HashMap<String, Value>,
    closed: bool,
}

struct Ctrl {
    writer: Mutex<TcpStream>,
    state: Arc<(Mutex<CtrlState>, Condvar)>,
    next_token: AtomicU64,
    log: Arc<Mutex<fs::File>>,
}

pub struct Baresip {
    proc: PeerProcess,
    ctrl: Ctrl,
    sip_port: u16,
    ctrl_port: u16,
    user: String,
    registered: bool,
    record_dir: Option<PathBuf>,
    account_line: String,
    tmp: TempDir,
}

/// Default timeout of `command`.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

fn netstring(v: &Value) -> Vec<u8> {
    let body = v.to_string();
    format!("{}:{},", body.len(), body).into_bytes()
}

fn reader_thread(mut stream: TcpStream, state: Arc<(Mutex<CtrlState>, Condvar)>, log: Arc<Mutex<fs::File>>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        // Parse as many complete netstrings as there are.
        while let Some(colon) = buf.iter().position(|&b| b == b':') {
            let Ok(len) = std::str::from_utf8(&buf[..colon]).unwrap_or("x").trim().parse::<usize>() else {
                // Garbage: resynchronise by dropping up to the colon.
                buf.drain(..=colon);
                continue;
            };
            if buf.len() < colon + 1 + len + 1 {
                break;
            }
            let body = buf[colon + 1..colon + 1 + len].to_vec();
            buf.drain(..colon + 1 + len + 1);
            let text = String::from_utf8_lossy(&body).into_owned();
            if let Ok(mut f) = log.lock() {
                let _ = writeln!(f, "<- {text}");
            }
            let Ok(v) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let (lock, cv) = &*state;
            let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
            if v.get("response").and_then(Value::as_bool) == Some(true) {
                let tok = v.get("token").and_then(Value::as_str).unwrap_or("").to_string();
                st.responses.insert(tok, v);
            } else {
                st.events.push((v, false));
            }
            cv.notify_all();
        }
    }
    let (lock, cv) = &*state;
    lock.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
    cv.notify_all();
}

impl Baresip {
    /// Starts baresip, connects to ctrl_tcp and creates the UA (which starts registering if
    /// `registrar_port` is set; this does not wait for the result: use
    /// `wait_registered`/`wait_event_type("REGISTER_OK"|"REGISTER_FAIL", ..)`).
    pub fn start(opts: BaresipOpts) -> Baresip {
        let bin = require_tool("baresip");
        assert!(!opts.user.is_empty(), "BaresipOpts.user must be set");
        let mut last = String::new();
        for _attempt in 0..3 {
            match Self::try_start(&bin, &opts) {
                Ok(b) => return b,
                Err((msg, retry)) => {
                    if !retry {
                        panic!("{msg}");
                    }
                    eprintln!("[harness] baresip start failed, retrying with other ports: {msg}");
                    last = msg;
                }
            }
        }
        panic!("[harness] baresip failed to start 3 times: {last}");
    }

    fn try_start(bin: &Path, opts: &BaresipOpts) -> Result<Baresip, (String, bool)> {
        let tmp = TempDir::new(&format!("baresip-{}", opts.user));
        let base = free_port_block(3);
        let (sip_port, ctrl_port) = (base, base + 2);
        let source = match &opts.audio_source {
            Some(p) => p.clone(),
            None => {
                let p = tmp.join("silence.wav");
                write_silence_wav(&p, 120.0, 8000);
                p
            }
        };
        let record_dir = if opts.record || opts.record_dir.is_some() {
            let d = opts.record_dir.clone().unwrap_or_else(|| tmp.join("rec"));
            fs::create_dir_all(&d).expect("create record dir");
            Some(d)
        } else {
            None
        };
        let module_dir =
            ["/usr/lib/baresip/modules", "/usr/local/lib/baresip/modules", "/usr/lib/x86_64-linux-gnu/baresip/modules"]
                .into_iter()
                .find(|d| Path::new(d).join("g711.so").exists())
                .unwrap_or("/usr/lib/baresip/modules");
        let mut cfg = format!(
            "# generated by tests/common/baresip.rs\n\
             poll_method epoll\n\
             sip_listen 127.0.0.1:{sip_port}\n\
             net_interface 127.0.0.1\n\
             audio_player aubridge,nil\n\
             audio_alert aubridge,nil\n\
             audio_source aufile,{src}\n\
             ausrc_srate 8000\n\
             ausrc_channels 1\n\
             auplay_srate 8000\n\
             auplay_channels 1\n\
             rtp_ports 10000-19999\n\
             rtp_timeout 0\n\
             module_path {module_dir}\n",
            src = source.display()
        );
        if opts.codecs == Codecs::OpusAndG711 {
            cfg.push_str("module opus.so\n");
        }
        cfg.push_str("module g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule srtp.so\n");
        if let Some(d) = &record_dir {
            cfg.push_str(&format!("module sndfile.so\nsnd_path {}\n", d.display()));
        }
        cfg.push_str(&format!(
            "module_app account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\n"
        ));
        for l in &opts.extra_config {
            cfg.push_str(l);
            cfg.push('\n');
        }
        fs::write(tmp.join("config"), cfg).expect("write baresip config");
        fs::write(tmp.join("accounts"), "").expect("write baresip accounts");
        fs::write(tmp.join("contacts"), "").expect("write baresip contacts");

        let transport = opts.transport.clone().unwrap_or_else(|| "udp".into());
        let mut acc = format!("<sip:{}@127.0.0.1;transport={transport}>", opts.user);
        if let Some(pw) = &opts.password {
            acc.push_str(&format!(";auth_pass={pw}"));
        }
        match opts.registrar_port {
            Some(kp) => acc.push_str(&format!(";outbound=\"sip:127.0.0.1:{kp};transport={transport}\";regint=600")),
            None => acc.push_str(";regint=0"),
        }
        acc.push_str(if opts.auto_answer { ";answermode=auto" } else { ";answermode=manual" });
        if opts.srtp_mandatory {
            acc.push_str(";mediaenc=srtp-mand");
        }
        for p in &opts.extra_account_params {
            acc.push(';');
            acc.push_str(p);
        }

        let log = tmp.join("baresip.log");
        let logf = fs::File::create(&log).expect("create baresip.log");
        let mut cmd = Command::new(bin);
        cmd.arg("-f").arg(tmp.path()).current_dir(tmp.path()).env("HOME", tmp.path());
        cmd.stdin(Stdio::null()).stdout(logf.try_clone().expect("dup log")).stderr(logf);
        let mut proc =
            PeerProcess::spawn(&format!("baresip {}", opts.user), cmd, log.clone(), Duration::from_millis(1500));

        // Connect to ctrl_tcp.
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            if let Some(st) = proc.exited() {
                let tail = tail_file(&log, 30);
                let retry = tail.contains("in use") || tail.contains("Address already");
                return Err((
                    format!("[harness] baresip exited at startup ({st}); log {}:\n{tail}", log.display()),
                    retry,
                ));
            }
            match TcpStream::connect(("127.0.0.1", ctrl_port)) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    return Err((
                        format!(
                            "[harness] cannot connect to baresip ctrl_tcp 127.0.0.1:{ctrl_port}: {e}; log {}:\n{}",
                            log.display(),
                            tail_file(&log, 30)
                        ),
                        false,
                    ));
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::new((Mutex::new(CtrlState::default()), Condvar::new()));
        let ctrl_log = Arc::new(Mutex::new(fs::File::create(tmp.join("ctrl.log")).expect("create ctrl.log")));
        {
            let (rs, st, lg) = (stream.try_clone().expect("clone ctrl stream"), state.clone(), ctrl_log.clone());
            std::thread::Builder::new()
                .name(format!("baresip-ctrl-{}", opts.user))
                .spawn(move || reader_thread(rs, st, lg))
                .expect("spawn ctrl reader");
        }
        let b = Baresip {
            proc,
            ctrl: Ctrl { writer: Mutex::new(stream), state, next_token: AtomicU64::new(1), log: ctrl_log },
            sip_port,
            ctrl_port,
            user: opts.user.clone(),
            registered: opts.registrar_port.is_some(),
            record_dir,
            account_line: acc.clone(),
            tmp,
        };
        let r = b.command("uanew", &acc);
        if r.get("ok").and_then(Value::as_bool) != Some(true) {
            return Err((format!("[harness] baresip uanew failed: {r}; log {}", b.log_path().display()), false));
        }
        Ok(b)
    }

    /// Sends a ctrl_tcp command (e.g. "dial", "sip:bob@127.0.0.1"; "accept", ""; "hangup",
    /// ""; "transfer", "sip:..."; "hold"/"resume"; "reginfo"; "listcalls") and returns the
    /// response object `{"response":true,"ok":..,"data":"..","token":".."}`. Panics if no
    /// response arrives within 10 s.
    pub fn command(&self, cmd: &str, params: &str) -> Value {
        self.try_command(cmd, params, COMMAND_TIMEOUT).unwrap_or_else(|e| {
            panic!("[harness] baresip {} command `{cmd} {params}`: {e}; log {}", self.user, self.log_path().display())
        })
    }

    /// `command` returning Err on timeout / closed connection.
    pub fn try_command(&self, cmd: &str, params: &str, timeout: Duration) -> Result<Value, String> {
        let token = self.ctrl.next_token.fetch_add(1, Ordering::Relaxed).to_string();
        let msg = json!({"command": cmd, "params": params, "token": token});
        if let Ok(mut f) = self.ctrl.log.lock() {
            let _ = writeln!(f, "-> {msg}");
        }
        {
            let mut w = self.ctrl.writer.lock().unwrap_or_else(|e| e.into_inner());
            w.write_all(&netstring(&msg)).map_err(|e| format!("write to ctrl_tcp: {e}"))?;
        }
        let (lock, cv) = &*self.ctrl.state;
        let deadline = Instant::now() + timeout;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(v) = st.responses.remove(&token) {
                return Ok(v);
            }
            if st.closed {
                return Err("ctrl_tcp connection closed (baresip died?)".into());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("no response within {timeout:?}"));
            }
            st = cv.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// `command` that also asserts `"ok": true`; returns the response's "data" text.
    pub fn command_ok(&self, cmd: &str, params: &str) -> String {
        let r = self.command(cmd, params);
        assert_eq!(
            r.get("ok").and_then(Value::as_bool),
            Some(true),
            "baresip {} `{cmd} {params}` failed: {r}",
            self.user
        );
        r.get("data").and_then(Value::as_str).unwrap_or("").to_string()
    }

    /// Waits for the first not-yet-returned event (since start) matching `pred`, marks it
    /// returned and gives it back. Events are kept in arrival order, so waiting for B and
    /// then for A works even if A arrived first. None on timeout or if baresip died.
    pub fn wait_event(&self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Option<Value> {
        let (lock, cv) = &*self.ctrl.state;
        let deadline = Instant::now() + timeout;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some((v, used)) = st.events.iter_mut().find(|(v, used)| !*used && pred(v)) {
                *used = true;
                return Some(v.clone());
            }
            let now = Instant::now();
            if st.closed || now >= deadline {
                return None;
            }
            st = cv.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// `wait_event` for `"type" == ty`.
    pub fn wait_event_type(&self, ty: &str, timeout: Duration) -> Option<Value> {
        self.wait_event(|v| v.get("type").and_then(Value::as_str) == Some(ty), timeout)
    }

    /// `wait_event_type` that panics with the events seen so far and the log path.
    pub fn expect_event(&self, ty: &str, timeout: Duration) -> Value {
        self.wait_event_type(ty, timeout).unwrap_or_else(|| {
            panic!(
                "[harness] baresip {}: no {ty} event within {timeout:?}; events so far: {:?}; log {}",
                self.user,
                self.event_types(),
                self.log_path().display()
            )
        })
    }

    /// Waits for REGISTER_OK (true) or REGISTER_FAIL (false); None on timeout.
    pub fn wait_registered(&self, timeout: Duration) -> Option<bool> {
        self.wait_event(
            |v| matches!(v.get("type").and_then(Value::as_str), Some("REGISTER_OK" | "REGISTER_FAIL")),
            timeout,
        )
        .map(|v| v["type"] == "REGISTER_OK")
    }

    /// All events received so far (returned by a wait or not).
    pub fn events(&self) -> Vec<Value> {
        let st = self.ctrl.state.0.lock().unwrap_or_else(|e| e.into_inner());
        st.events.iter().map(|(v, _)| v.clone()).collect()
    }

    /// Just the "type" of every event so far (for assertion messages).
    pub fn event_types(&self) -> Vec<String> {
        self.events().iter().map(|v| v.get("type").and_then(Value::as_str).unwrap_or("?").to_string()).collect()
    }

    /// Marks all events so far as returned (later waits only see newer ones).
    pub fn consume_events(&self) {
        let mut st = self.ctrl.state.0.lock().unwrap_or_else(|e| e.into_inner());
        for e in st.events.iter_mut() {
            e.1 = true;
        }
    }

    /// `dial <uri>`.
    pub fn dial(&self, uri: &str) -> Value {
        self.command("dial", uri)
    }
    /// `accept` the current incoming call.
    pub fn accept(&self) -> Value {
        self.command("accept", "")
    }
    /// `hangup` the current call.
    pub fn hangup(&self) -> Value {
        self.command("hangup", "")
    }

    /// SIP port (UDP and TCP; TLS is sip_port + 1).
    pub fn sip_port(&self) -> u16 {
        self.sip_port
    }
    pub fn ctrl_port(&self) -> u16 {
        self.ctrl_port
    }
    pub fn user(&self) -> &str {
        &self.user
    }
    /// What others dial: the AOR sip:<user>@127.0.0.1 when registered, else the direct
    /// sip:<user>@127.0.0.1:<sip_port>.
    pub fn uri(&self) -> String {
        if self.registered { self.aor() } else { self.contact_uri() }
    }
    pub fn aor(&self) -> String {
        format!("sip:{}@127.0.0.1", self.user)
    }
    /// sip:<user>@127.0.0.1:<sip_port> (reaches this UA directly, bypassing the proxy).
    pub fn contact_uri(&self) -> String {
        format!("sip:{}@127.0.0.1:{}", self.user, self.sip_port)
    }
    /// The account line given to `uanew`.
    pub fn account_line(&self) -> &str {
        &self.account_line
    }
    pub fn record_dir(&self) -> Option<&Path> {
        self.record_dir.as_deref()
    }
    /// Recordings of received audio (`*-dec.wav`), oldest first.
    pub fn received_wavs(&self) -> Vec<PathBuf> {
        self.recordings("-dec.wav")
    }
    /// Recordings of sent audio (`*-enc.wav`), oldest first.
    pub fn sent_wavs(&self) -> Vec<PathBuf> {
        self.recordings("-enc.wav")
    }
    fn recordings(&self, suffix: &str) -> Vec<PathBuf> {
        let Some(d) = &self.record_dir else {
            return vec![];
        };
        let mut v: Vec<PathBuf> =
            fs::read_dir(d).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
        v.retain(|p| p.to_string_lossy().ends_with(suffix));
        v.sort();
        v
    }
    pub fn log_path(&self) -> &Path {
        &self.proc.log
    }
    pub fn temp_dir(&self) -> &Path {
        self.tmp.path()
    }
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }
    /// Stops the process now (e.g. to let sndfile close its WAVs); idempotent.
    pub fn stop(&mut self) {
        self.proc.kill();
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("[harness] baresip {} events: {:?}", self.user, self.event_types());
        }
        self.proc.report_if_panicking();
        self.proc.kill();
        if let Ok(w) = self.ctrl.writer.lock() {
            let _ = w.shutdown(std::net::Shutdown::Both);
        }
    }
}
