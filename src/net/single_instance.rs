//! One window per user profile: the first `orbitphone` listens on a Unix domain socket in
//! the runtime directory; a second launch (a `sip:`/`tel:` link clicked in a chat) connects,
//! hands its URI over and exits, and the running window dials it. The socket name is keyed
//! to the config directory, so separate profiles (`ORBIT_CONFIG_DIR`) run side by side.
//!
//! Wire format: one line, `dial <uri>` or `show`, answered with `ok`.
//! On non-Unix systems there is no hand-over yet: every launch is a first instance.

use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// What a second launch asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handover {
    /// Call this URI or number.
    Dial(String),
    /// Just bring the window forward.
    Show,
}

/// Overrides the directory of the socket (tests).
pub const RUNTIME_DIR_ENV: &str = "ORBIT_RUNTIME_DIR";

/// Where the instance socket lives for a profile whose settings are in `config_dir`:
/// `$ORBIT_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR`, else the temp dir (per user).
pub fn socket_path(config_dir: Option<&Path>) -> PathBuf {
    let dir = std::env::var_os(RUNTIME_DIR_ENV)
        .or_else(|| std::env::var_os("XDG_RUNTIME_DIR"))
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    socket_path_in(&dir, config_dir)
}

/// The instance socket in runtime directory `dir` for the profile in `config_dir`.
pub fn socket_path_in(dir: &Path, config_dir: Option<&Path>) -> PathBuf {
    // FNV-1a of the config dir: short, stable across runs and builds.
    let key = config_dir.map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3));
    #[cfg(unix)]
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    #[cfg(not(unix))]
    let uid = 0;
    dir.join(format!("orbitphone-{uid}-{:08x}.sock", hash as u32))
}

/// The outcome of [`claim`].
pub enum Instance {
    /// We are the first: serve hand-overs with [`Listener::serve`].
    First(Listener),
    /// A running instance took the request; exit.
    Handed,
}

/// The first instance's socket; removed when dropped.
pub struct Listener {
    #[cfg(unix)]
    inner: std::os::unix::net::UnixListener,
    path: PathBuf,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn request_line(uri: Option<&str>) -> String {
    match uri.map(str::trim).filter(|u| !u.is_empty()) {
        // One line on the wire: a URI never needs a newline.
        Some(u) => format!("dial {}\n", u.replace(['\r', '\n'], "")),
        None => "show\n".to_string(),
    }
}

/// Parse one request line.
pub fn parse_request(line: &str) -> Option<Handover> {
    let line = line.trim();
    match line.split_once(' ') {
        Some(("dial", uri)) if !uri.trim().is_empty() => Some(Handover::Dial(uri.trim().to_string())),
        None if line == "show" => Some(Handover::Show),
        _ => None,
    }
}

/// Become the instance at `path`, or hand `uri` (or "show") to the one already running.
/// A socket file left by a crashed instance is replaced.
#[cfg(unix)]
pub fn claim(path: &Path, uri: Option<&str>) -> std::io::Result<Instance> {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::time::Duration;
    match UnixStream::connect(path) {
        Ok(mut stream) => {
            stream.set_read_timeout(Some(Duration::from_secs(3)))?;
            stream.write_all(request_line(uri).as_bytes())?;
            let mut answer = String::new();
            BufReader::new(&stream).read_line(&mut answer)?;
            if answer.trim() == "ok" {
                return Ok(Instance::Handed);
            }
            Err(std::io::Error::other(format!("the running Orbit answered {answer:?}")))
        }
        Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound) => {
            // Nobody listens: a stale file (or none). Take the place.
            let _ = std::fs::remove_file(path);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let inner = UnixListener::bind(path)?;
            Ok(Instance::First(Listener { inner, path: path.to_path_buf() }))
        }
        Err(e) => Err(e),
    }
}

/// Without Unix sockets every launch is a first instance (no hand-over).
#[cfg(not(unix))]
pub fn claim(path: &Path, _uri: Option<&str>) -> std::io::Result<Instance> {
    Ok(Instance::First(Listener { path: path.to_path_buf() }))
}

impl Listener {
    /// Accept hand-overs on the runtime; each arrives on the returned channel.
    pub fn serve(self, rt: &tokio::runtime::Handle) -> mpsc::UnboundedReceiver<Handover> {
        let (tx, rx) = mpsc::unbounded_channel();
        #[cfg(unix)]
        rt.spawn(async move {
            use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
            let listener = match self
                .inner
                .set_nonblocking(true)
                .and_then(|()| tokio::net::UnixListener::from_std(self.inner.try_clone()?))
            {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!("single instance: cannot listen on {}: {e}", self.path.display());
                    return;
                }
            };
            // `self` lives as long as the task, so the socket file stays while we listen.
            let _keep = self;
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut line = String::new();
                    // A line of at most 4 KiB; anything else is dropped.
                    let mut reader = BufReader::new(read.take(4096));
                    let read =
                        tokio::time::timeout(std::time::Duration::from_secs(3), reader.read_line(&mut line)).await;
                    let request = read.ok().and_then(|r| r.ok()).and_then(|_| parse_request(&line));
                    let answer = match request.map(|h| tx.send(h)) {
                        Some(Ok(())) => "ok\n",
                        _ => "error\n",
                    };
                    let _ = write.write_all(answer.as_bytes()).await;
                });
            }
        });
        #[cfg(not(unix))]
        let _ = (rt, self, tx);
        rx
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn temp_socket(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("orbit-si-{name}-{}.sock", std::process::id()))
    }

    #[test]
    fn second_instance_hands_its_uri_to_the_first() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let path = temp_socket("handover");
        let Instance::First(listener) = claim(&path, None).unwrap() else { panic!("first instance") };
        let mut rx = listener.serve(rt.handle());
        assert!(matches!(claim(&path, Some("sip:7001@example.com")).unwrap(), Instance::Handed));
        assert!(matches!(claim(&path, None).unwrap(), Instance::Handed));
        let got = rt.block_on(async {
            let a = rx.recv().await;
            let b = rx.recv().await;
            (a, b)
        });
        assert_eq!(got, (Some(Handover::Dial("sip:7001@example.com".into())), Some(Handover::Show)));
        drop(rt);
    }

    #[test]
    fn a_stale_socket_file_is_replaced() {
        let path = temp_socket("stale");
        // A crash leaves the file behind without a listener.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let Instance::First(second) = claim(&path, Some("7001")).unwrap() else { panic!("stale file taken over") };
        drop(second);
        assert!(!path.exists(), "the socket file goes with the instance");
    }

    #[test]
    fn requests_parse_and_profiles_get_their_own_socket() {
        assert_eq!(parse_request("dial tel:+1 555\n"), Some(Handover::Dial("tel:+1 555".into())));
        assert_eq!(parse_request("show\n"), Some(Handover::Show));
        assert_eq!(parse_request("dial \n"), None);
        assert_eq!(parse_request("rm -rf"), None);
        assert_eq!(request_line(Some("sip:a@b\r\nshow")), "dial sip:a@bshow\n");
        let a = socket_path(Some(Path::new("/home/a/.config/orbitphone")));
        let b = socket_path(Some(Path::new("/tmp/other-profile")));
        assert_ne!(a, b);
        assert_eq!(a, socket_path(Some(Path::new("/home/a/.config/orbitphone"))));
    }
}
