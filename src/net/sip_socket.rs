//! SIP over UDP, TCP and TLS: one task per socket or connection, feeding whole
//! messages into one channel and sending whatever the engine asks for. A bad frame on
//! a connection is reported and skipped; it never closes the connection.

use crate::sip::transport::{Frame, Peer, StreamFramer, Transport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// A message (or keepalive) that arrived.
#[derive(Debug)]
pub struct Inbound {
    /// Who sent it.
    pub source: Peer,
    /// The bytes of one complete message.
    pub data: Vec<u8>,
}

/// Interval of CRLF keepalives on connections (RFC 5626 §4.4.1 suggests ~2 min; NATs
/// close idle TCP sooner, so we go shorter).
const CRLF_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(30);

/// Sockets for one SIP endpoint.
pub struct SipSockets {
    udp: Option<Arc<UdpSocket>>,
    connections: HashMap<(Transport, SocketAddr), mpsc::Sender<Vec<u8>>>,
    inbound: mpsc::Sender<Inbound>,
    tls: Option<Arc<super::tls::TlsClient>>,
    /// Connections accepted by the listener task, to be added to `connections`.
    accept_rx: Option<mpsc::Receiver<(SocketAddr, mpsc::Sender<Vec<u8>>)>>,
    /// Local addresses actually bound, per transport (a port-0 listener reports its real port).
    pub local: HashMap<Transport, SocketAddr>,
}

impl SipSockets {
    /// Bind UDP and TCP listeners on `listen` (port 0 picks a free port; TCP then binds
    /// the same port as UDP so one Contact serves both).
    pub async fn bind(
        listen: SocketAddr,
        transports: &[Transport],
        tls: Option<Arc<super::tls::TlsClient>>,
        inbound: mpsc::Sender<Inbound>,
    ) -> std::io::Result<Self> {
        let mut local = HashMap::new();
        let mut udp = None;
        let mut port = listen.port();
        if transports.contains(&Transport::Udp) {
            let sock = Arc::new(UdpSocket::bind(listen).await?);
            let addr = sock.local_addr()?;
            port = addr.port();
            local.insert(Transport::Udp, addr);
            let (s, tx) = (sock.clone(), inbound.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                loop {
                    match s.recv_from(&mut buf).await {
                        Ok((n, from)) => {
                            let data = &buf[..n];
                            if data.iter().all(|b| *b == b'\r' || *b == b'\n') {
                                continue; // keepalive
                            }
                            let peer = Peer { transport: Transport::Udp, addr: from };
                            if tx.send(Inbound { source: peer, data: data.to_vec() }).await.is_err() {
                                break;
                            }
                        }
                        Err(e) => tracing::debug!("udp recv: {e}"),
                    }
                }
            });
            udp = Some(sock);
        }
        let mut me = Self { udp, connections: HashMap::new(), inbound, tls, accept_rx: None, local };
        if transports.contains(&Transport::Tcp) {
            let l = match TcpListener::bind(SocketAddr::new(listen.ip(), port)).await {
                Ok(l) => l,
                Err(_) => TcpListener::bind(SocketAddr::new(listen.ip(), 0)).await?,
            };
            let addr = l.local_addr()?;
            me.local.insert(Transport::Tcp, addr);
            let tx = me.inbound.clone();
            let (reg_tx, reg_rx) = mpsc::channel::<(SocketAddr, mpsc::Sender<Vec<u8>>)>(16);
            tokio::spawn(async move {
                loop {
                    let Ok((stream, from)) = l.accept().await else { continue };
                    let _ = stream.set_nodelay(true);
                    let sender = spawn_connection(stream, Peer { transport: Transport::Tcp, addr: from }, tx.clone());
                    if reg_tx.send((from, sender)).await.is_err() {
                        break;
                    }
                }
            });
            me.accept_rx = Some(reg_rx);
        }
        if transports.contains(&Transport::Tls) {
            // TLS is client-only for the phone: requests to us come back over the
            // connection we opened to the registrar, as RFC 5626 outbound intends.
            let addr = SocketAddr::new(listen.ip(), port);
            me.local.insert(Transport::Tls, addr);
        }
        Ok(me)
    }

    /// Send one message; opens a connection for TCP/TLS if none exists.
    pub async fn send(&mut self, to: Peer, bytes: Vec<u8>) -> Result<(), String> {
        self.collect_accepted();
        match to.transport {
            Transport::Udp => {
                let sock = self.udp.as_ref().ok_or("UDP is not enabled")?;
                sock.send_to(&bytes, to.addr).await.map(|_| ()).map_err(|e| format!("send to {to}: {e}"))
            }
            Transport::Tcp | Transport::Tls => {
                let key = (to.transport, to.addr);
                if let Some(tx) = self.connections.get(&key) {
                    if tx.send(bytes.clone()).await.is_ok() {
                        return Ok(());
                    }
                    self.connections.remove(&key);
                }
                let sender = self.connect(to).await?;
                sender.send(bytes).await.map_err(|_| format!("connection to {to} closed"))?;
                self.connections.insert(key, sender);
                Ok(())
            }
        }
    }

    async fn connect(&self, to: Peer) -> Result<mpsc::Sender<Vec<u8>>, String> {
        let stream = TcpStream::connect(to.addr).await.map_err(|e| format!("connect to {to}: {e}"))?;
        let _ = stream.set_nodelay(true);
        match to.transport {
            Transport::Tls => {
                let tls = self.tls.as_ref().ok_or("TLS is not configured")?;
                let stream = tls.connect(stream, to.addr).await?;
                Ok(spawn_connection(stream, to, self.inbound.clone()))
            }
            _ => Ok(spawn_connection(stream, to, self.inbound.clone())),
        }
    }

    fn collect_accepted(&mut self) {
        if let Some(rx) = self.accept_rx.as_mut() {
            while let Ok((addr, tx)) = rx.try_recv() {
                self.connections.insert((Transport::Tcp, addr), tx);
            }
        }
    }
}

/// Run one connection: a reader that frames messages and answers CRLF pings, and a
/// writer fed by the returned channel that also sends CRLF keepalives.
pub fn spawn_connection<S>(stream: S, peer: Peer, inbound: mpsc::Sender<Inbound>) -> mpsc::Sender<Vec<u8>>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    let pong_tx = tx.clone();
    tokio::spawn(async move {
        let mut framer = StreamFramer::default();
        let mut buf = vec![0u8; 16_384];
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            framer.push(&buf[..n]);
            while let Some(frame) = framer.next_frame() {
                match frame {
                    Frame::Message(data) => {
                        if inbound.send(Inbound { source: peer, data }).await.is_err() {
                            return;
                        }
                    }
                    Frame::Ping => {
                        let _ = pong_tx.send(b"\r\n".to_vec()).await;
                    }
                    Frame::Pong => {}
                }
            }
            if framer.pending() > 2 * crate::sip::message::MAX_MESSAGE_SIZE {
                tracing::warn!(%peer, "stream framing lost; closing connection");
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut keepalive = tokio::time::interval(CRLF_KEEPALIVE);
        keepalive.tick().await;
        loop {
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    if wr.write_all(&msg).await.is_err() { break; }
                }
                _ = keepalive.tick() => {
                    if wr.write_all(b"\r\n\r\n").await.is_err() { break; }
                }
            }
        }
    });
    tx
}
