//! The HTTP/1.1 server behind [`FakeProvider`](crate::FakeProvider): records every request,
//! asks the responders for an answer, and sends it whole, chunk by chunk or never.

use std::convert::Infallible;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body::Body;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::reply::{BodyPlan, FakeBody};
use crate::{responders, ReceivedRequest, StreamEnd, StreamRecord};

/// Largest request body the fake reads.
const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// What the server has seen, shared with the test.
#[derive(Debug)]
pub(crate) struct Shared {
    /// `http://127.0.0.1:PORT`.
    pub(crate) uri: String,
    /// Pause between two chunks of a streamed answer, in milliseconds.
    pub(crate) chunk_delay_ms: AtomicU64,
    requests: Mutex<Vec<ReceivedRequest>>,
    streams: Mutex<Vec<StreamRecord>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Shared {
    pub(crate) fn new(uri: String, chunk_delay: Duration) -> Self {
        Self {
            uri,
            chunk_delay_ms: AtomicU64::new(u64::try_from(chunk_delay.as_millis()).unwrap_or(0)),
            requests: Mutex::new(Vec::new()),
            streams: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn requests(&self) -> Vec<ReceivedRequest> {
        locked(&self.requests).clone()
    }

    pub(crate) fn streams(&self) -> Vec<StreamRecord> {
        locked(&self.streams).clone()
    }

    pub(crate) fn chunk_delay(&self) -> Duration {
        Duration::from_millis(self.chunk_delay_ms.load(Ordering::Relaxed))
    }

    fn update_stream(&self, index: usize, change: impl FnOnce(&mut StreamRecord)) {
        if let Some(record) = locked(&self.streams).get_mut(index) {
            change(record);
        }
    }
}

/// Runs the server on a thread with its own runtime until `stop` fires (or its sender is
/// dropped); every connection and stream ends with it.
pub(crate) fn spawn_thread(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    stop: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("fake-provider".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(listener) else {
                    return;
                };
                tokio::select! {
                    () = serve(listener, shared) => {}
                    _ = stop => {}
                }
            });
        })?;
    Ok(())
}

/// Accepts connections until the future is dropped; connections end with it.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&shared);
                connections.spawn(async move {
                    let service = service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(handle(request, shared).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Records the request, then answers it as the responders say.
async fn handle(request: http::Request<Incoming>, shared: Arc<Shared>) -> http::Response<FakeBody> {
    let (parts, body) = request.into_parts();
    let body = read_body(body).await;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let url = url::Url::parse(&format!("{}{path_and_query}", shared.uri))
        .or_else(|_| url::Url::parse(&shared.uri));
    let Ok(url) = url else {
        return http::Response::new(FakeBody::Whole(None));
    };
    let received = ReceivedRequest {
        method: parts.method,
        url,
        headers: parts.headers,
        body,
    };
    locked(&shared.requests).push(received.clone());

    let template = responders::respond(&received, &shared);
    if let Some(delay) = template.delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = http::Response::builder().status(template.status);
    for (name, value) in &template.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    let body = match template.body {
        BodyPlan::Whole(bytes) => FakeBody::Whole(Some(bytes)),
        BodyPlan::Stall => FakeBody::Pending,
        BodyPlan::NoAnswer => std::future::pending().await,
        BodyPlan::Chunks { chunks, gap } => {
            FakeBody::Channel(stream_chunks(&shared, received.url.path(), chunks, gap))
        }
    };
    response
        .body(body)
        .unwrap_or_else(|_| http::Response::new(FakeBody::Whole(None)))
}

/// Reads a request body, up to a cap.
async fn read_body(mut body: Incoming) -> Vec<u8> {
    let mut read = Vec::new();
    while let Some(Ok(frame)) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame.into_data() {
            if read.len() + data.len() > MAX_REQUEST_BYTES {
                break;
            }
            read.extend_from_slice(&data);
        }
    }
    read
}

/// Feeds `chunks` to the body with `gap` between them, recording whether the client stayed
/// to the end.
fn stream_chunks(
    shared: &Arc<Shared>,
    path: &str,
    chunks: Vec<Bytes>,
    gap: Duration,
) -> mpsc::Receiver<Bytes> {
    let index = {
        let mut streams = locked(&shared.streams);
        streams.push(StreamRecord {
            path: path.to_owned(),
            chunks_total: chunks.len(),
            chunks_sent: 0,
            end: StreamEnd::InProgress,
        });
        streams.len() - 1
    };
    let (sender, receiver) = mpsc::channel(1);
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        for (n, chunk) in chunks.into_iter().enumerate() {
            if n > 0 {
                tokio::select! {
                    () = tokio::time::sleep(gap) => {}
                    () = sender.closed() => break,
                }
            }
            if sender.send(chunk).await.is_err() {
                break;
            }
            shared.update_stream(index, |r| r.chunks_sent = n + 1);
        }
        // The body is done once hyper has taken the last chunk and the channel closes.
        let finished = !sender.is_closed()
            && shared
                .streams()
                .get(index)
                .is_some_and(|r| r.chunks_sent == r.chunks_total);
        let end = if finished {
            drop(sender);
            StreamEnd::Completed
        } else {
            StreamEnd::ClientWentAway
        };
        shared.update_stream(index, |r| r.end = end);
    });
    receiver
}
