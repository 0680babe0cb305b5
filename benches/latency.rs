//! Two-process mouth-to-ear latency over loopback (`cargo bench --bench latency`).
//!
//! Two real `orbitphone cli` processes: the caller reads `--audio-in` (48 kHz: silence,
//! then a 1 kHz tone), dials the callee directly (no registrar), and the callee writes
//! what it hears to `--audio-out`. Each process logs the wall-clock time of its WAV's
//! sample 0 (`audio-in: sample 0 read at unix_us=…`, `audio-out: sample 0 written at
//! unix_us=…`, the scheduled time of that 20 ms tick); both run on one host and so share
//! one clock. The tone's onset in each file (the same Goertzel detector on both sides)
//! then gives
//!
//!   latency = (out_t0 + out_onset / 48 kHz) − (in_t0 + in_onset / 48 kHz)
//!
//! which is everything we add between a file-fed "microphone" and a file "speaker":
//! encode, the network (loopback), the callee's tick phase relative to the caller's
//! (uniform 0–20 ms, so runs differ), jitter buffer, decode and resampling. A sound card
//! would add its own buffers, and a real microphone the 20 ms it takes to capture a
//! packet (a file hands the whole frame over at once): neither is ours to measure here.
//!
//! Under `cargo test --all-targets` (no `--bench`) it makes one PCMU call as a smoke test.

use orbitphone::media::analysis::{sine, tone_onset};
use orbitphone::media::wav::WavSource;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const RATE: u32 = 48000;
const TONE_AT_MS: u32 = 1500;

fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("orbit-latency-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write_input(path: &Path) {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: RATE, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).expect("create input wav");
    let mut samples = vec![0i16; (RATE * TONE_AT_MS / 1000) as usize];
    samples.extend(sine(1000.0, RATE, 1000, 0.5));
    samples.resize(samples.len() + RATE as usize * 3, 0);
    for s in samples {
        w.write_sample(s).expect("write input wav");
    }
    w.finalize().expect("finish input wav");
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).expect("free port")
}

fn spawn(args: &[&str], log: &Path, stdout: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_orbitphone"))
        .arg("cli")
        .args(args)
        .env("ORBIT_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn orbitphone cli")
}

/// The `unix_us=` value of the first log line containing `what`.
fn logged_us(log: &Path, what: &str) -> Result<u64, String> {
    let text = std::fs::read_to_string(log).map_err(|e| format!("{}: {e}", log.display()))?;
    text.lines()
        .find(|l| l.contains(what))
        .and_then(|l| l.split("unix_us=").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no {what:?} in {}", log.display()))
}

fn onset(path: &Path) -> Result<usize, String> {
    let src = WavSource::open(path, RATE).map_err(|e| format!("{}: {e}", path.display()))?;
    tone_onset(src.samples(), RATE, 1000.0).ok_or_else(|| format!("no 1 kHz onset in {}", path.display()))
}

fn quit(child: &mut Child) {
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "quit");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// One call; returns the added latency in ms.
fn one_call(opus: bool) -> Result<f64, String> {
    let dir = temp_dir(if opus { "opus" } else { "pcmu" });
    let input = dir.join("in.wav");
    let output = dir.join("out.wav");
    write_input(&input);
    let port = free_udp_port();
    let listen = format!("127.0.0.1:{port}");
    let (a_log, b_log) = (dir.join("caller.log"), dir.join("callee.log"));
    let (in_arg, out_arg) = (input.to_string_lossy().to_string(), output.to_string_lossy().to_string());
    let mut b_args = vec!["--account", "sip:bob@127.0.0.1", "--no-register", "--listen", &listen, "--auto-answer"];
    b_args.extend(["--audio-out", &out_arg]);
    let mut a_args = vec!["--account", "sip:alice@127.0.0.1", "--no-register", "--audio-in", &in_arg];
    if opus {
        b_args.push("--opus");
        a_args.push("--opus");
    }
    let mut callee = spawn(&b_args, &b_log, Stdio::null());
    let mut caller = spawn(&a_args, &a_log, Stdio::piped());
    let (tx, rx) = mpsc::channel();
    let stdout = caller.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The callee must be listening before the INVITE: give it a moment, then dial.
    std::thread::sleep(Duration::from_millis(500));
    if let Some(stdin) = caller.stdin.as_mut() {
        let _ = writeln!(stdin, "dial sip:bob@{listen}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut codec = None;
    while codec.is_none() && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100))
            && line.contains("\"call_established\"")
        {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            codec = Some(v["codec"].as_str().unwrap_or("?").to_string());
        }
    }
    let result = match codec {
        None => Err(format!("no call_established (logs in {})", dir.display())),
        Some(c) if c != if opus { "opus" } else { "PCMU" } => Err(format!("negotiated {c}")),
        Some(_) => {
            std::thread::sleep(Duration::from_millis(TONE_AT_MS as u64 + 1500));
            Ok(())
        }
    };
    quit(&mut caller);
    quit(&mut callee);
    result?;
    let in_t0 = logged_us(&a_log, "audio-in: sample 0")?;
    let out_t0 = logged_us(&b_log, "audio-out: sample 0")?;
    let (a, b) = (onset(&input)?, onset(&output)?);
    let ms = (out_t0 as f64 - in_t0 as f64) / 1000.0 + (b as f64 - a as f64) * 1000.0 / f64::from(RATE);
    if std::env::var_os("ORBIT_KEEP_TEMP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(ms)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runs = if full { 8 } else { 1 };
    println!("two-process latency over loopback ({runs} call(s) per codec{})", if full { "" } else { ", smoke mode" });
    let codecs: &[(&str, bool)] = if full { &[("pcmu", false), ("opus", true)] } else { &[("pcmu", false)] };
    let mut failed = false;
    for &(name, opus) in codecs {
        let mut figures = Vec::new();
        for _ in 0..runs {
            match one_call(opus) {
                Ok(ms) => figures.push(ms),
                Err(e) => {
                    println!("latency2p/{name}: run failed: {e}");
                    failed = true;
                }
            }
        }
        if figures.is_empty() {
            continue;
        }
        let mean = figures.iter().sum::<f64>() / figures.len() as f64;
        let min = figures.iter().copied().fold(f64::INFINITY, f64::min);
        let max = figures.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let all: Vec<String> = figures.iter().map(|f| format!("{f:.1}")).collect();
        println!(
            "latency2p/{name:4}: tone onset caller in -> callee out: mean {mean:.1} ms, min {min:.1}, max {max:.1} (runs: {})",
            all.join(", ")
        );
        // Even with a whole tick of phase and a deep buffer it must stay far below this.
        assert!(min > 0.0 && max < 200.0, "implausible latency figures {all:?}");
    }
    assert!(!failed, "a call failed");
}
