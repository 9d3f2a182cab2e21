//! A local Ollama on its default address (`localhost:11434`) that forwards every request to
//! the fake provider's Ollama routes.
//!
//! The admin and provider keys APIs store configurations without a base URL, so their
//! connection tests go to the provider's default endpoint; for every cloud provider that is on
//! the internet, for Ollama it is this machine. Forwarding that one local port to the fake
//! lets the black-box tests run those connection tests end to end without leaving the machine.
//! The port is bound only while a test holds a [`LocalOllama`]; tests of one process take
//! turns, and a test waits while another process holds the port.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use llm_settings_fake_provider::FakeProvider;

/// Ollama's default port, as in the catalog's default base URL.
pub const PORT: u16 = 11434;
/// Path prefix of the fake's Ollama routes.
const FAKE_PREFIX: &str = "/ollama";
/// How long a test waits for another process to release the port.
const BIND_PATIENCE: Duration = Duration::from_secs(120);

static TURN: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();

/// The port, forwarding to one fake provider until dropped.
pub struct LocalOllama {
    stop: Arc<AtomicBool>,
    forwarded: Arc<AtomicUsize>,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl LocalOllama {
    /// Waits for the port to be free for this test, then forwards it to `fake`.
    pub async fn forward_to(fake: &FakeProvider) -> Self {
        let turn = TURN
            .get_or_init(|| tokio::sync::Mutex::new(()))
            .lock()
            .await;
        let deadline = Instant::now() + BIND_PATIENCE;
        let mut listeners = loop {
            match TcpListener::bind(("127.0.0.1", PORT)) {
                Ok(listener) => break vec![listener],
                Err(e) if e.kind() == ErrorKind::AddrInUse && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!(
                    "the black-box tests need 127.0.0.1:{PORT} for a local Ollama stand-in: {e}"
                ),
            }
        };
        // `localhost` may resolve to ::1 first; answer there too when IPv6 is available.
        listeners.extend(TcpListener::bind(("::1", PORT)).ok());
        let stop = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(AtomicUsize::new(0));
        for listener in listeners {
            listener.set_nonblocking(true).unwrap();
            let (stop, forwarded, target) = (stop.clone(), forwarded.clone(), fake.address());
            std::thread::spawn(move || serve(&listener, &stop, &forwarded, target));
        }
        Self {
            stop,
            forwarded,
            _turn: turn,
        }
    }

    /// How many requests reached the port so far.
    pub fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for LocalOllama {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The accept loops notice within one poll and drop their listeners.
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn serve(listener: &TcpListener, stop: &AtomicBool, forwarded: &AtomicUsize, target: SocketAddr) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                forwarded.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = forward(stream, target);
                });
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return,
        }
    }
}

/// Reads one request head, sends it to the fake under its Ollama prefix with
/// `Connection: close`, and copies the answer back.
fn forward(mut client: TcpStream, target: SocketAddr) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::new();
    let mut byte = [0_u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        if client.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let mut parts = lines.next().unwrap_or_default().splitn(3, ' ');
    let (method, path, version) = (
        parts.next().unwrap_or("GET"),
        parts.next().unwrap_or("/"),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    let mut request = format!("{method} {FAKE_PREFIX}{path} {version}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            request.push_str(line);
            request.push_str("\r\n");
        }
    }
    request.push_str("connection: close\r\n\r\n");
    let mut upstream = TcpStream::connect(target)?;
    upstream.set_read_timeout(Some(Duration::from_secs(30)))?;
    upstream.write_all(request.as_bytes())?;
    std::io::copy(&mut upstream, &mut client)?;
    client.shutdown(Shutdown::Both)
}
