//! An IO wrapper that times each request from the first byte read to the response flushed,
//! which is what the server-side ack histogram must measure to be honest: a timer started in
//! the handler would miss the time the request spent in socket buffers and in hyper's parser,
//! and one stopped in the handler would miss the serialization and write.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::clock::mono_ns;
use crate::metrics::Metrics;

/// What the handler tells the IO layer about the response being written.
pub const PENDING_NONE: u8 = 0;
pub const PENDING_V3_REFUSED: u8 = 1;
pub const PENDING_V3_ACCEPTED: u8 = 2;

/// Shared between one connection's IO wrapper and its request handler.
#[derive(Default)]
pub struct ConnTiming {
    /// Monotonic ns of the first byte of the current request; 0 = between requests.
    pub request_start: AtomicU64,
    /// Which histogram the response being written belongs to.
    pub pending: AtomicU8,
}

impl ConnTiming {
    /// The current request's arrival, or now if none was seen (cannot happen with hyper).
    pub fn start(&self) -> u64 {
        match self.request_start.load(Ordering::Relaxed) {
            0 => mono_ns(),
            t => t,
        }
    }
}

pub struct TimedIo<S> {
    inner: S,
    timing: Arc<ConnTiming>,
    metrics: Arc<crate::state::Gateway>,
}

impl<S> TimedIo<S> {
    pub fn new(inner: S, timing: Arc<ConnTiming>, gw: Arc<crate::state::Gateway>) -> Self {
        TimedIo {
            inner,
            timing,
            metrics: gw,
        }
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics.metrics
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let _ = self.timing.request_start.compare_exchange(
                0,
                mono_ns(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    /// hyper flushes once a response is fully handed to the socket: the request ends here.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(r, Poll::Ready(Ok(()))) {
            let pending = self.timing.pending.swap(PENDING_NONE, Ordering::Relaxed);
            let start = self.timing.request_start.swap(0, Ordering::Relaxed);
            if pending != PENDING_NONE && start != 0 {
                let took = mono_ns().saturating_sub(start);
                self.metrics().ack_all.record(took);
                if pending == PENDING_V3_ACCEPTED {
                    self.metrics().ack_accepted.record(took);
                }
            }
        }
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
