//! Servers that do not answer, for timeout and cancellation tests, on 127.0.0.1 only.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;

/// Accepts connections, reads whatever comes, and never writes a byte. Counts the
/// connections it accepted and those the client closed (a cancelled request). Runs on a
/// thread of its own.
#[derive(Debug)]
pub struct SilentServer {
    address: SocketAddr,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
}

impl SilentServer {
    /// Starts on 127.0.0.1 with a free port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (a, c) = (Arc::clone(&accepted), Arc::clone(&closed));
        let (stop, stopped) = oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("silent-server".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        () = hold(listener, a, c) => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(Self {
            address,
            accepted,
            closed,
            stop: Some(stop),
        })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections the client has closed so far.
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Holds every connection open, reading until the client closes it.
async fn hold(listener: TcpListener, accepted: Arc<AtomicUsize>, closed: Arc<AtomicUsize>) {
    let mut held = tokio::task::JoinSet::new();
    while let Ok((mut socket, _)) = listener.accept().await {
        accepted.fetch_add(1, Ordering::SeqCst);
        let closed = Arc::clone(&closed);
        held.spawn(async move {
            let mut buffer = [0_u8; 4096];
            while matches!(socket.read(&mut buffer).await, Ok(n) if n > 0) {}
            closed.fetch_add(1, Ordering::SeqCst);
        });
    }
}

/// A listening port whose accept queue is full, so a new connection attempt is never
/// completed (its SYN is dropped): a local stand-in for a host that does not answer.
#[derive(Debug)]
pub struct Unconnectable {
    address: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl Unconnectable {
    /// Binds 127.0.0.1 with the smallest backlog, never accepts, and fills the queue until a
    /// connection attempt hangs. `None` when the system completes connections anyway.
    pub async fn start() -> Option<Self> {
        let socket = TcpSocket::new_v4().ok()?;
        socket.bind("127.0.0.1:0".parse().ok()?).ok()?;
        let address = socket.local_addr().ok()?;
        let listener = socket.listen(0).ok()?;
        let mut fillers = Vec::new();
        for _ in 0..16 {
            let attempt = TcpStream::connect(address);
            match tokio::time::timeout(Duration::from_millis(300), attempt).await {
                Ok(Ok(stream)) => fillers.push(stream),
                Ok(Err(_)) => return None,
                Err(_) => {
                    return Some(Self {
                        address,
                        _listener: listener,
                        _fillers: fillers,
                    })
                }
            }
        }
        None
    }

    /// The address that never completes a connection.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("http://{}", self.address)
    }
}
