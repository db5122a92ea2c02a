//! The load modes against the in-process yardsticks, over real sockets on ephemeral ports.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use switchyard_bench::config::{LoadConfig, OpenConfig, PipelinedConfig, Transport};
use switchyard_bench::report::Report;
use switchyard_bench::{closed_loop, open_loop, pipelined, yardstick};
use switchyard_protocol::v3frame::{Response, REQUEST_LEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

async fn start(transport: Transport) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let task = match transport {
        Transport::Http => tokio::spawn(yardstick::serve_http(listener, shutdown)),
        Transport::Tcp => tokio::spawn(yardstick::serve_tcp(listener, shutdown)),
    };
    Server { addr, stop, task }
}

fn load(transport: Transport, addr: SocketAddr, connections: usize) -> LoadConfig {
    LoadConfig {
        connections,
        accounts: 2,
        duration: Duration::from_secs(1),
        drain: Duration::from_secs(2),
        ..LoadConfig::new(transport, addr.to_string(), "test-secret")
    }
}

fn assert_clean(r: &Report) {
    assert!(r.completed > 0, "{r:#?}");
    assert_eq!(r.accepted, r.completed, "{r:#?}");
    assert_eq!(r.sent, r.completed, "{r:#?}");
    assert_eq!((r.errors.connect, r.errors.io), (0, 0), "{r:#?}");
    assert_eq!(r.dropped_late, 0, "{r:#?}");
    assert_eq!(r.order_violations, 0, "{r:#?}");
    assert_eq!(r.status_counts.get("202"), Some(&r.completed), "{r:#?}");
    assert!(r.latency_us.p50 > 0.0 && r.latency_us.max >= r.latency_us.p99);
}

fn open(transport: Transport, addr: SocketAddr) -> OpenConfig {
    OpenConfig::new(load(transport, addr, 4), 500.0)
}

// Goal: a 1 s open loop at 500/s against the HTTP yardstick sends every scheduled request
// and gets every one accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_http() {
    let s = start(Transport::Http).await;
    let r = open_loop::run_open(&open(Transport::Http, s.addr))
        .await
        .unwrap();
    assert_clean(&r);
    assert_eq!(r.sent, 500, "{r:#?}");
    assert!(r.send_lag_us.is_some());
    s.stop().await;
}

// Goal: the same over the binary TCP protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_tcp() {
    let s = start(Transport::Tcp).await;
    let r = open_loop::run_open(&open(Transport::Tcp, s.addr))
        .await
        .unwrap();
    assert_clean(&r);
    assert_eq!(r.sent, 500, "{r:#?}");
    s.stop().await;
}

// Goal: a closed loop against the HTTP yardstick completes requests without errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_http() {
    let s = start(Transport::Http).await;
    let r = closed_loop::run_closed(&load(Transport::Http, s.addr, 4))
        .await
        .unwrap();
    assert_clean(&r);
    s.stop().await;
}

// Goal: a closed loop against the TCP yardstick completes frames without errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_tcp() {
    let s = start(Transport::Tcp).await;
    let r = closed_loop::run_closed(&load(Transport::Tcp, s.addr, 4))
        .await
        .unwrap();
    assert_clean(&r);
    s.stop().await;
}

// Goal: pipelined TCP keeps its window full, and every answer arrives in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_tcp_in_order() {
    let s = start(Transport::Tcp).await;
    let mut l = load(Transport::Tcp, s.addr, 2);
    l.accounts = 2;
    let r = pipelined::run_pipelined(&PipelinedConfig {
        load: l,
        window: 16,
    })
    .await
    .unwrap();
    assert_clean(&r);
    assert_eq!(r.window, Some(16));
    s.stop().await;
}

// Goal: no coordinated omission — when the server stalls, the requests scheduled during the
// stall are charged the wait, so the high percentiles show it (a closed loop would record a
// single slow sample).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_charges_stalls() {
    // A frame server that stalls 300 ms after accepting, then answers everything.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut frame = [0u8; REQUEST_LEN];
        let mut seq = 0;
        while s.read_exact(&mut frame).await.is_ok() {
            seq += 1;
            if s.write_all(&Response::accept(seq, 0).encode())
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let mut cfg = open(Transport::Tcp, addr);
    cfg.load.connections = 1;
    let r = open_loop::run_open(&cfg).await.unwrap();
    assert_clean(&r);
    // ~150 of the 500 requests were due during the stall, waiting 0–300 ms.
    assert!(r.latency_us.p90 > 100_000.0, "{:?}", r.latency_us);
    assert!(r.latency_us.p50 < 100_000.0, "{:?}", r.latency_us);
    server.abort();
}

// Goal: against a port nobody listens on, the run still ends on time and reports connect
// errors instead of hanging or failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_server_is_bounded() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let mut cfg = open(Transport::Http, addr);
    cfg.max_lag = Duration::from_millis(200);
    let t0 = Instant::now();
    let r = open_loop::run_open(&cfg).await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    assert_eq!(r.completed, 0);
    assert!(r.errors.connect > 0);
    assert!(r.dropped_late > 0);
}
