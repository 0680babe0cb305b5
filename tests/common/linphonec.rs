//! linphonec 5.1 (Debian package linphone-cli), headless, driven through a named FIFO on its
//! stdin (`<tempdir>/stdin.fifo`; you can also `echo calls > <that fifo>` by hand while
//! debugging with ORBIT_KEEP_TEMP=1). HOME is the temp dir (it needs its own HOME), rc file
//! `<tempdir>/linphonerc`, `-d 0` (no liblinphone log unless ORBIT_LINPHONE_DEBUG=1, which
//! writes `<tempdir>/liblinphone.log` at level 6).
//!
//! What works (verified by the harness self-tests, 127.0.0.1, UDP):
//! - Registration from `[proxy_0]`/`[auth_info_0]` with digest auth to the harness
//!   Kamailio; there is NO spontaneous "registered" output line with `-d 0`: poll
//!   `status register` until `registered, identity=...` (what `wait_registered` does).
//! - `soundcard use files` → "Using wav files instead of soundcard."; then `play x.wav`
//!   (sent audio) and `record y.wav` (received audio, mono 16-bit 8 kHz for PCMU) apply to
//!   the next calls.
//! - Incoming call: "Receiving new incoming call from sip:alice@127.0.0.1, assigned id 1";
//!   `answer` → "Call 1 with sip:alice@127.0.0.1 connected." and
//!   "Media streams established with sip:alice@127.0.0.1 for call 1 (audio).";
//!   `terminate` (or the peer's BYE) → "Call 1 with sip:alice@127.0.0.1 ended (No error)."
//! - Outgoing: `call sip:bob@127.0.0.1` → "Establishing call id to sip:bob@127.0.0.1,
//!   assigned id 1", "Call 1 to sip:bob@127.0.0.1 ringing.", then "... connected.".
//! - It registers with a GRUU (`+sip.instance`), so in-dialog requests to it carry
//!   R-URI `sip:user@127.0.0.1;gr=urn:uuid:...`; the harness Kamailio resolves those.
//! - With `-a`: "-------auto answering to call-------" then "... connected.".
//! - Direct calls without any registration (no [proxy_0], default_proxy=-1) work too.
//! - Noise on stderr ("Could not find a suitable soundcard", "Unable to open linphone
//!   database", "Could not open .../dont_wait_too_long.mkv" when no `play` file is set) is
//!   harmless.
//! - HOME and XDG_RUNTIME_DIR point into the temp dir (else libpulse leaves /tmp/pulse-*).
//! - Not exercised by the self-tests: `pause`, `transfer` (blind / attended with Replaces).
//! - It exits when its stdin reaches EOF (the harness keeps the FIFO open).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::ports::free_port_block;
use super::process::{PeerProcess, TempDir, make_fifo, require_tool};

#[derive(Clone, Debug, Default)]
pub struct LinphonecOpts {
    /// SIP user; identity sip:<user>@127.0.0.1.
    pub user: String,
    pub password: Option<String>,
    /// Kamailio port to register with (proxy + route sip:127.0.0.1:<port>). None = no
    /// registration (call it at `uri()` = sip:<user>@127.0.0.1:<sip_port>).
    pub registrar_port: Option<u16>,
    /// `-a`: answer incoming calls automatically.
    pub auto_answer: bool,
    /// WAV to send (`play`).
    pub play_wav: Option<PathBuf>,
    /// Record received audio (`record`) into `record_wav` or `<tempdir>/received.wav`.
    pub record: bool,
    pub record_wav: Option<PathBuf>,
    /// Raw text appended to the rc file (e.g. "[sip]\nsomething=1").
    pub extra_rc: Vec<String>,
}

impl LinphonecOpts {
    pub fn registered(user: &str, password: &str, kamailio_port: u16) -> Self {
        LinphonecOpts {
            user: user.into(),
            password: Some(password.into()),
            registrar_port: Some(kamailio_port),
            ..Default::default()
        }
    }
    pub fn direct(user: &str) -> Self {
        LinphonecOpts { user: user.into(), ..Default::default() }
    }
    pub fn auto_answer(mut self, on: bool) -> Self {
        self.auto_answer = on;
        self
    }
    pub fn play_wav(mut self, wav: impl Into<PathBuf>) -> Self {
        self.play_wav = Some(wav.into());
        self
    }
    pub fn record(mut self, on: bool) -> Self {
        self.record = on;
        self
    }
    pub fn record_wav(mut self, wav: impl Into<PathBuf>) -> Self {
        self.record_wav = Some(wav.into());
        self.record = true;
        self
    }
    pub fn extra_rc(mut self, text: &str) -> Self {
        self.extra_rc.push(text.into());
        self
    }
}

#[derive(Default)]
struct Lines {
    /// (line, already returned by a wait)
    lines: Vec<(String, bool)>,
    open_streams: usize,
}

pub struct Linphonec {
    proc: PeerProcess,
    stdin: Mutex<File>,
    lines: Arc<(Mutex<Lines>, Condvar)>,
    log: Arc<Mutex<File>>,
    sip_port: u16,
    user: String,
    registered: bool,
    record_wav: Option<PathBuf>,
    tmp: TempDir,
}

fn rc_file(opts: &LinphonecOpts, sip_port: u16) -> String {
    let u = &opts.user;
    let mut rc = format!(
        "[sip]\n\
         sip_port={sip_port}\n\
         sip_tcp_port={sip_port}\n\
         sip_tls_port=-1\n\
         default_proxy={dp}\n\
         register_only_when_network_is_up=0\n\
         auto_net_state_mon=0\n\
         guess_hostname=0\n\
         ipv6_enabled=0\n\
         contact=\"{u}\" <sip:{u}@127.0.0.1>\n\
         inc_timeout=60\n\
         \n\
         [net]\n\
         firewall_policy=0\n\
         \n\
         [rtp]\n\
         audio_rtp_port={a}\n\
         video_rtp_port={v}\n\
         \n\
         [sound]\n\
         echocancellation=0\n\
         \n\
         [video]\n\
         enabled=0\n\
         capture=0\n\
         display=0\n\
         automatically_initiate=0\n\
         automatically_accept=0\n\
         \n",
        dp = if opts.registrar_port.is_some() { 0 } else { -1 },
        a = sip_port + 2,
        v = sip_port + 4,
    );
    if let Some(kp) = opts.registrar_port {
        rc.push_str(&format!(
            "[proxy_0]\n\
             reg_proxy=<sip:127.0.0.1:{kp};transport=udp>\n\
             reg_route=<sip:127.0.0.1:{kp};transport=udp;lr>\n\
             reg_identity=\"{u}\" <sip:{u}@127.0.0.1>\n\
             reg_expires=600\n\
             reg_sendregister=1\n\
             publish=0\n\
             dial_escape_plus=0\n\
             \n"
        ));
    }
    if let Some(pw) = &opts.password {
        rc.push_str(&format!(
            "[auth_info_0]\n\
             username={u}\n\
             userid={u}\n\
             passwd={pw}\n\
             realm=127.0.0.1\n\
             domain=127.0.0.1\n\
             \n"
        ));
    }
    for extra in &opts.extra_rc {
        rc.push_str(extra);
        rc.push('\n');
    }
    rc
}

fn reader(stream: impl std::io::Read, tag: &'static str, lines: Arc<(Mutex<Lines>, Condvar)>, log: Arc<Mutex<File>>) {
    let mut r = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string();
        if let Ok(mut f) = log.lock() {
            let _ = writeln!(f, "{tag} {line}");
        }
        let (lock, cv) = &*lines;
        lock.lock().unwrap_or_else(|e| e.into_inner()).lines.push((line, false));
        cv.notify_all();
    }
    let (lock, cv) = &*lines;
    lock.lock().unwrap_or_else(|e| e.into_inner()).open_streams -= 1;
    cv.notify_all();
}

impl Linphonec {
    /// Starts linphonec, switches it to WAV files (`soundcard use files`) and sets the
    /// play/record files. Does not wait for registration (see `wait_registered`).
    pub fn start(opts: LinphonecOpts) -> Linphonec {
        let bin = require_tool("linphonec");
        assert!(!opts.user.is_empty(), "LinphonecOpts.user must be set");
        let tmp = TempDir::new(&format!("linphonec-{}", opts.user));
        let sip_port = free_port_block(6);
        fs::create_dir_all(tmp.join(".local/share/linphone")).expect("create linphone data dir");
        fs::create_dir_all(tmp.join(".config")).expect("create .config");
        let rc = tmp.join("linphonerc");
        fs::write(&rc, rc_file(&opts, sip_port)).expect("write linphonerc");

        // Named FIFO for stdin. Open order avoids blocking: a read+write handle first, then
        // the child's read end, then our write end; the read+write handle is dropped so the
        // child sees EOF (and quits) if we go away.
        let fifo = tmp.join("stdin.fifo");
        make_fifo(&fifo).unwrap_or_else(|e| panic!("mkfifo {}: {e}", fifo.display()));
        let keeper = OpenOptions::new().read(true).write(true).open(&fifo).expect("open fifo rw");
        let child_stdin = File::open(&fifo).expect("open fifo for reading");
        let writer = OpenOptions::new().write(true).open(&fifo).expect("open fifo for writing");
        drop(keeper);

        let log_path = tmp.join("linphonec.log");
        let log = Arc::new(Mutex::new(File::create(&log_path).expect("create linphonec.log")));
        let mut cmd = Command::new(bin);
        cmd.arg("-c").arg(&rc);
        let debug = std::env::var("ORBIT_LINPHONE_DEBUG").is_ok_and(|v| !v.is_empty() && v != "0");
        if debug {
            cmd.args(["-d", "6", "-l"]).arg(tmp.join("liblinphone.log"));
        } else {
            cmd.args(["-d", "0"]);
        }
        if opts.auto_answer {
            cmd.arg("-a");
        }
        // Own runtime dir: otherwise libpulse leaves a /tmp/pulse-XXXX dir per start.
        let runtime = tmp.join("run");
        fs::create_dir_all(&runtime).expect("create runtime dir");
        let _ = fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        cmd.env("HOME", tmp.path()).env("XDG_RUNTIME_DIR", &runtime).current_dir(tmp.path());
        cmd.stdin(Stdio::from(child_stdin)).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut proc =
            PeerProcess::spawn(&format!("linphonec {}", opts.user), cmd, log_path.clone(), Duration::from_secs(1));
        let lines = Arc::new((Mutex::new(Lines { lines: vec![], open_streams: 2 }), Condvar::new()));
        let out = proc.child_mut().stdout.take().expect("stdout");
        let err = proc.child_mut().stderr.take().expect("stderr");
        for (tag, s) in [("out", Box::new(out) as Box<dyn std::io::Read + Send>), ("err", Box::new(err))] {
            let (l, lg) = (lines.clone(), log.clone());
            std::thread::Builder::new()
                .name(format!("linphonec-{}-{tag}", opts.user))
                .spawn(move || reader(s, tag, l, lg))
                .expect("spawn reader");
        }
        let record_wav = if opts.record || opts.record_wav.is_some() {
            Some(opts.record_wav.clone().unwrap_or_else(|| tmp.join("received.wav")))
        } else {
            None
        };
        let l = Linphonec {
            proc,
            stdin: Mutex::new(writer),
            lines,
            log,
            sip_port,
            user: opts.user.clone(),
            registered: opts.registrar_port.is_some(),
            record_wav,
            tmp,
        };
        l.send("soundcard use files");
        l.expect_output("Using wav files instead of soundcard", Duration::from_secs(10));
        if let Some(p) = &opts.play_wav {
            l.send(&format!("play {}", p.display()));
        }
        if let Some(p) = &l.record_wav {
            l.send(&format!("record {}", p.display()));
        }
        l
    }

    /// Writes one command line to linphonec's stdin.
    pub fn send(&self, cmd: &str) {
        if let Ok(mut f) = self.log.lock() {
            let _ = writeln!(f, "--> {cmd}");
        }
        let mut w = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
        w.write_all(format!("{cmd}\n").as_bytes()).and_then(|_| w.flush()).unwrap_or_else(|e| {
            panic!("[harness] write to linphonec {} stdin: {e}; log {}", self.user, self.log_path().display())
        });
    }

    /// Waits for the first not-yet-returned stdout/stderr line (since start) containing
    /// `pattern` (plain substring), marks it returned and gives it back. None on timeout or
    /// when linphonec has exited.
    pub fn wait_output(&self, pattern: &str, timeout: Duration) -> Option<String> {
        let (lock, cv) = &*self.lines;
        let deadline = Instant::now() + timeout;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some((l, used)) = st.lines.iter_mut().find(|(l, used)| !*used && l.contains(pattern)) {
                *used = true;
                return Some(l.clone());
            }
            let now = Instant::now();
            if st.open_streams == 0 || now >= deadline {
                return None;
            }
            st = cv.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// `wait_output` that panics with the output tail and log path.
    pub fn expect_output(&self, pattern: &str, timeout: Duration) -> String {
        self.wait_output(pattern, timeout).unwrap_or_else(|| {
            let out = self.output();
            panic!(
                "[harness] linphonec {}: no output line containing {pattern:?} within {timeout:?}; last lines:\n{}\nlog {}",
                self.user,
                out[out.len().saturating_sub(25)..].join("\n"),
                self.log_path().display()
            )
        })
    }

    /// Polls `status register` until it reports `registered, identity=` (true) or
    /// `timeout` passes (false).
    pub fn wait_registered(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.send("status register");
            if self.wait_output("registered, identity=", Duration::from_millis(300)).is_some() {
                return true;
            }
        }
        false
    }

    /// All output lines so far.
    pub fn output(&self) -> Vec<String> {
        let st = self.lines.0.lock().unwrap_or_else(|e| e.into_inner());
        st.lines.iter().map(|(l, _)| l.clone()).collect()
    }

    /// Marks all output so far as returned.
    pub fn consume_output(&self) {
        let mut st = self.lines.0.lock().unwrap_or_else(|e| e.into_inner());
        for l in st.lines.iter_mut() {
            l.1 = true;
        }
    }

    pub fn sip_port(&self) -> u16 {
        self.sip_port
    }
    pub fn user(&self) -> &str {
        &self.user
    }
    /// AOR sip:<user>@127.0.0.1 when registered, else sip:<user>@127.0.0.1:<sip_port>.
    pub fn uri(&self) -> String {
        if self.registered { self.aor() } else { self.contact_uri() }
    }
    pub fn aor(&self) -> String {
        format!("sip:{}@127.0.0.1", self.user)
    }
    pub fn contact_uri(&self) -> String {
        format!("sip:{}@127.0.0.1:{}", self.user, self.sip_port)
    }
    /// Where received audio is recorded (if `record` was requested).
    pub fn record_wav(&self) -> Option<&Path> {
        self.record_wav.as_deref()
    }
    pub fn log_path(&self) -> &Path {
        &self.proc.log
    }
    pub fn temp_dir(&self) -> &Path {
        self.tmp.path()
    }
    pub fn fifo_path(&self) -> PathBuf {
        self.tmp.join("stdin.fifo")
    }
    pub fn stop(&mut self) {
        self.proc.kill();
    }
}

impl Drop for Linphonec {
    fn drop(&mut self) {
        self.proc.report_if_panicking();
        self.proc.kill();
    }
}
