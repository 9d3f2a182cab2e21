//! A local Ollama on its default address (`localhost:11434`) that forwards every request to
//! the fake provider's Ollama routes.
//!
//! The admin and provider keys APIs store configurations without a base URL, so their
//! connection tests go to the provider's default endpoint; for every cloud provider that is on
//! the internet, for Ollama it is this machine. Forwarding that one local port to the fake
//! lets the black-box tests run those connection tests end to end without leaving the machine.
//! There is one such port, so a test holds it (a process-wide lock) while it uses it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use llm_settings_fake_provider::FakeProvider;

/// Ollama's default port, as in the catalog's default base URL.
pub const PORT: u16 = 11434;
/// Path prefix of the fake's Ollama routes.
const FAKE_PREFIX: &str = "/ollama";

/// Where requests go while a test holds the port.
static TARGET: Mutex<Option<SocketAddr>> = Mutex::new(None);
/// Requests forwarded since the process started.
static FORWARDED: Mutex<usize> = Mutex::new(0);
static LISTENING: OnceLock<()> = OnceLock::new();
static TURN: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();

/// The port, forwarding to one fake provider until dropped.
pub struct LocalOllama {
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl LocalOllama {
    /// Waits for the port to be free for this test, then forwards it to `fake`.
    pub async fn forward_to(fake: &FakeProvider) -> Self {
        let turn = TURN
            .get_or_init(|| tokio::sync::Mutex::new(()))
            .lock()
            .await;
        LISTENING.get_or_init(listen);
        *TARGET.lock().unwrap() = Some(fake.address());
        Self { _turn: turn }
    }

    /// How many requests reached the port so far (in this process).
    pub fn forwarded(&self) -> usize {
        *FORWARDED.lock().unwrap()
    }
}

impl Drop for LocalOllama {
    fn drop(&mut self) {
        *TARGET.lock().unwrap() = None;
    }
}

fn listen() {
    let v4 = TcpListener::bind(("127.0.0.1", PORT)).unwrap_or_else(|e| {
        panic!("the black-box tests need 127.0.0.1:{PORT} for a local Ollama stand-in: {e}")
    });
    std::thread::spawn(move || serve(v4));
    // `localhost` may resolve to ::1 first; answer there too when IPv6 is available.
    if let Ok(v6) = TcpListener::bind(("::1", PORT)) {
        std::thread::spawn(move || serve(v6));
    }
}

fn serve(listener: TcpListener) {
    for stream in listener.incoming().map_while(Result::ok) {
        std::thread::spawn(move || {
            let _ = forward(stream);
        });
    }
}

/// Reads one request head, sends it to the fake under its Ollama prefix with
/// `Connection: close`, and copies the answer back.
fn forward(mut client: TcpStream) -> std::io::Result<()> {
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
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.splitn(3, ' ');
    let (method, path, version) = (
        parts.next().unwrap_or("GET"),
        parts.next().unwrap_or("/"),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    let Some(target) = *TARGET.lock().unwrap() else {
        client.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        )?;
        return client.shutdown(Shutdown::Both);
    };
    *FORWARDED.lock().unwrap() += 1;
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
