//! v3 binary TCP ingress (§2.4), with pipelining: a client may send many 304-byte frames
//! without waiting; each read is processed frame by frame and all responses of that read go
//! out in one write, in order. Buffers are fixed per connection (64 frames in, 64 responses
//! out), so a fast sender is slowed by TCP flow control, never by memory growth.
//!
//! Frames have a fixed size, so a malformed frame cannot desynchronise the stream: it gets a
//! DECODE_ERROR response and the connection goes on. Only a stream ending inside a frame is
//! unrecoverable, and then there is no one left to answer; a stream stalling inside a frame
//! is closed after `V3_TCP_PARTIAL_FRAME_TIMEOUT_MS`.

use std::sync::Arc;
use std::time::Duration;

use switchyard_protocol::v3frame::{decode_request, Response, REQUEST_LEN, RESPONSE_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::accept::{submit, Timing};
use crate::clock::{mono_ns, mono_ns_if, sample_stages, wall_ns};
use crate::metrics::inc;
use crate::state::Gateway;

/// Frames read (and answered) per batch at most.
const FRAMES_PER_READ: usize = 64;

/// Serves v3 binary frames until `shutdown` fires; over TLS when `GATEWAY_TLS_CERT` is set
/// (unless `V3_TCP_TLS=false`).
pub async fn serve(
    gw: Arc<Gateway>,
    listener: TcpListener,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let tls = match crate::tls::acceptor(&gw.cfg, crate::tls::Listener::Tcp) {
        Ok(t) => t,
        Err(e) => {
            // Validated at startup; only a file changed since then gets here.
            tracing::error!(%e, "v3 TCP ingress not served");
            return;
        }
    };
    let handshake_timeout = Duration::from_millis(gw.cfg.gateway.header_read_timeout_ms);
    crate::accept_loop(gw, listener, shutdown, move |gw, stream, mut stop| {
        let tls = tls.clone();
        async move {
            let r = tokio::select! {
                r = async {
                    match tls {
                        None => connection(&gw, stream).await,
                        Some(acceptor) => {
                            match crate::tls::handshake(&acceptor, stream, handshake_timeout).await {
                                Some(s) => connection(&gw, s).await,
                                None => Ok(()),
                            }
                        }
                    }
                } => r,
                _ = stop.changed() => Ok(()),
            };
            if let Err(e) = r {
                tracing::debug!(%e, "tcp connection ended");
            }
        }
    })
    .await
}

/// One connection's frames, over a plain `TcpStream` or a TLS stream (generic, so the plain
/// path has no indirection). A connection holding part of a frame for longer than
/// `V3_TCP_PARTIAL_FRAME_TIMEOUT_MS` (counted from that frame's first byte) is closed: a
/// client that stalls mid-frame is broken or hostile, and would hold its slot for ever. One
/// that is quiet between frames is an idle session and stays.
async fn connection<S>(gw: &Gateway, mut stream: S) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut rbuf = vec![0u8; FRAMES_PER_READ * REQUEST_LEN];
    let mut wbuf: Vec<u8> = Vec::with_capacity(FRAMES_PER_READ * RESPONSE_LEN);
    let mut accepted = [false; FRAMES_PER_READ];
    let mut filled = 0;
    let partial_timeout = match gw.cfg.v3.tcp_partial_frame_timeout_ms {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    };
    // When the frame now partly in `rbuf` must be complete (None: at a frame boundary).
    let mut partial_deadline: Option<tokio::time::Instant> = None;
    loop {
        let n = match partial_deadline {
            None => stream.read(&mut rbuf[filled..]).await?,
            Some(deadline) => {
                match tokio::time::timeout_at(deadline, stream.read(&mut rbuf[filled..])).await {
                    Ok(r) => r?,
                    Err(_) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "partial frame not completed within V3_TCP_PARTIAL_FRAME_TIMEOUT_MS",
                        ))
                    }
                }
            }
        };
        if n == 0 {
            return Ok(());
        }
        let read_mono = mono_ns();
        let read_wall = wall_ns();
        filled += n;
        let frames = filled / REQUEST_LEN;
        if frames == 0 {
            if partial_deadline.is_none() {
                partial_deadline = partial_timeout.map(|t| tokio::time::Instant::now() + t);
            }
            continue;
        }
        wbuf.clear();
        for (i, chunk) in rbuf[..frames * REQUEST_LEN]
            .chunks_exact(REQUEST_LEN)
            .enumerate()
        {
            let frame: &[u8; REQUEST_LEN] = chunk.try_into().expect("exact chunk");
            let t = Timing {
                received_at_ns: read_wall,
                received_mono_ns: read_mono,
                timed: sample_stages(),
            };
            let resp = handle_frame(gw, frame, t);
            accepted[i] = resp.status == 202;
            wbuf.extend_from_slice(&resp.encode());
        }
        stream.write_all(&wbuf).await?;
        // A no-op on a plain socket; pushes the TLS records out on a TLS stream.
        stream.flush().await?;
        let took = mono_ns().saturating_sub(read_mono);
        let m = &gw.metrics;
        let ok = accepted[..frames].iter().filter(|&&a| a).count() as u64;
        m.tcp_frames
            .fetch_add(frames as u64, std::sync::atomic::Ordering::Relaxed);
        // Every frame of this read was answered by this write: one latency for all of them.
        m.ack_all.record_n(took, frames as u64);
        if ok > 0 {
            m.ack_accepted.record_n(took, ok);
        }
        rbuf.copy_within(frames * REQUEST_LEN..filled, 0);
        filled -= frames * REQUEST_LEN;
        // What is left (if anything) is the start of a new frame: its clock starts now.
        partial_deadline = match (filled, partial_timeout) {
            (0, _) | (_, None) => None,
            (_, Some(t)) => Some(tokio::time::Instant::now() + t),
        };
    }
}

fn handle_frame(gw: &Gateway, frame: &[u8; REQUEST_LEN], t: Timing) -> Response {
    let parse_start = mono_ns_if(t.timed);
    let req = match decode_request(frame) {
        Ok(r) => r,
        Err(e) => {
            inc(&gw.metrics.decode_errors);
            return Response::decode_error(e, t.received_at_ns);
        }
    };
    let id = match gw.auth.verify_cached(req.token, switchyard_auth::now_sec()) {
        Ok(id) => id,
        Err(e) => {
            inc(&gw.metrics.auth_failures);
            return Response::error(e.http_status(), e.tcp_reason_code(), t.received_at_ns);
        }
    };
    let principal = gw.principal(&id);
    if t.timed {
        gw.metrics.stage_parse.record(mono_ns() - parse_start);
    }
    match submit(gw, &principal, &req.order, t) {
        Ok(seq) => Response::accept(seq, t.received_at_ns),
        Err(r) => Response::refused(r, t.received_at_ns),
    }
}
