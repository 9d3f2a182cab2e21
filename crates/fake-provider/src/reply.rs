//! The fake's answers: a status, headers and a body that is whole, streamed chunk by chunk
//! with a pause between chunks, or never comes.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use serde_json::Value;
use tokio::sync::mpsc;

/// What follows the status line.
#[derive(Debug)]
pub(crate) enum BodyPlan {
    /// One body, sent at once.
    Whole(Bytes),
    /// Chunks sent one after another with `gap` between them.
    Chunks { chunks: Vec<Bytes>, gap: Duration },
    /// Headers, then nothing ever.
    Stall,
    /// Not even a status line: the request is read and never answered.
    NoAnswer,
}

/// One answer: status, headers, body plan and an optional delay before answering.
#[derive(Debug)]
pub(crate) struct ResponseTemplate {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: BodyPlan,
    pub(crate) delay: Option<Duration>,
}

impl ResponseTemplate {
    pub(crate) fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: BodyPlan::Whole(Bytes::new()),
            delay: None,
        }
    }

    /// A JSON body with its content type.
    pub(crate) fn set_body_json(self, body: Value) -> Self {
        self.set_body_raw(body.to_string(), "application/json")
    }

    /// A body of the given media type.
    pub(crate) fn set_body_raw(mut self, body: impl Into<Vec<u8>>, mime: &str) -> Self {
        self.body = BodyPlan::Whole(Bytes::from(body.into()));
        self.insert_header("content-type", mime)
    }

    /// Sets a header, replacing one of the same name.
    pub(crate) fn insert_header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Waits this long before answering at all.
    pub(crate) fn set_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// A 200 whose body is `chunks`, sent with `gap` between them.
    pub(crate) fn streamed(mime: &str, chunks: Vec<String>, gap: Duration) -> Self {
        let mut template = Self::new(200).insert_header("content-type", mime);
        if mime == "text/event-stream" {
            template = template.insert_header("cache-control", "no-cache");
        }
        template.body = BodyPlan::Chunks {
            chunks: chunks.into_iter().map(Bytes::from).collect(),
            gap,
        };
        template
    }

    /// Headers of a server-sent-events answer, then silence.
    pub(crate) fn stalled() -> Self {
        let mut template = Self::new(200).insert_header("content-type", "text/event-stream");
        template.body = BodyPlan::Stall;
        template
    }

    /// No answer at all.
    pub(crate) fn no_answer() -> Self {
        let mut template = Self::new(200);
        template.body = BodyPlan::NoAnswer;
        template
    }
}

/// The body hyper sends: whole, fed by a channel, or never ending.
#[derive(Debug)]
pub(crate) enum FakeBody {
    Whole(Option<Bytes>),
    Channel(mpsc::Receiver<Bytes>),
    Pending,
}

impl Body for FakeBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Whole(body) => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
            Self::Channel(chunks) => chunks
                .poll_recv(cx)
                .map(|chunk| chunk.map(|b| Ok(Frame::data(b)))),
            Self::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Whole(Some(body)) => SizeHint::with_exact(body.len() as u64),
            Self::Whole(None) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}
