//! `switchyard demo`: gentle, varied traffic so that a fresh stack shows live data — orders
//! placed across accounts and symbols (marketable ones that fill, resting ones that wait),
//! some of the resting ones amended, some cancelled. One request at a time over plain HTTP/1.1:
//! a demo, not a load test (that is `switchyard bench`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Flags of `switchyard demo`.
#[derive(clap::Args)]
pub struct Args {
    /// The gateway's HTTP address.
    #[arg(long, default_value = "127.0.0.1:8081")]
    target: String,
    /// Actions per second (place, amend or cancel).
    #[arg(long, default_value_t = 2.0)]
    rate: f64,
    /// Accounts to trade for (`demo-0`, `demo-1`, …).
    #[arg(long, default_value_t = 4)]
    accounts: usize,
    /// Stop after this many seconds (0: run until interrupted).
    #[arg(long, default_value_t = 0)]
    duration: u64,
    /// Secret to sign the accounts' tokens with.
    #[arg(long, env = "JWT_HS256_SECRET", hide_env_values = true)]
    secret: String,
}

/// Symbols of the default symbol table with a price near the simulated venues' market, in
/// minor units.
const SYMBOLS: [(&str, u64); 6] = [
    ("AAPL", 19_000),
    ("MSFT", 42_000),
    ("NVDA", 12_000),
    ("BTC", 6_000_000),
    ("ETH", 300_000),
    ("SOL", 15_000),
];

struct Resting {
    account: usize,
    order_id: String,
    price: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0.0 && args.rate <= 1_000.0,
        "--rate must be in (0, 1000]"
    );
    anyhow::ensure!(
        (1..=1_000).contains(&args.accounts),
        "--accounts must be 1..=1000"
    );
    let tokens: Vec<String> = (0..args.accounts)
        .map(|i| switchyard_auth::mint_dev(&args.secret, &format!("demo-{i}"), 86_400, None))
        .collect();
    let mut rng = fastrand::Rng::new();
    let mut resting: Vec<Resting> = Vec::new();
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let start = Instant::now();
    let run_key = format!("{:x}", rng.u64(..));
    let mut n = 0u64;
    let mut next = Instant::now();
    while args.duration == 0 || start.elapsed() < Duration::from_secs(args.duration) {
        let roll = rng.u32(0..100);
        let line = if roll < 20 && !resting.is_empty() {
            let r = resting.swap_remove(rng.usize(..resting.len()));
            let path = format!("/orders/{}/cancel", r.order_id);
            let (code, _) = post(&args.target, &path, &tokens[r.account], None, "")?;
            format!("cancel {} → {code}", r.order_id)
        } else if roll < 40 && !resting.is_empty() {
            let i = rng.usize(..resting.len());
            let r = &mut resting[i];
            // A step away from the market: the order keeps resting.
            r.price = r.price * (100 - rng.u64(1..3)) / 100;
            let body = format!(r#"{{"price":{}}}"#, r.price);
            let path = format!("/orders/{}/amend", r.order_id);
            let (code, _) = post(&args.target, &path, &tokens[r.account], None, &body)?;
            format!("amend {} price {} → {code}", r.order_id, r.price)
        } else {
            n += 1;
            let account = rng.usize(..args.accounts);
            let (symbol, mid) = SYMBOLS[rng.usize(..SYMBOLS.len())];
            let side = if rng.bool() { "BUY" } else { "SELL" };
            let qty = rng.u64(1..10);
            let marketable = rng.u32(0..100) < 40;
            let (body, price) = if marketable {
                let b = format!(
                    r#"{{"symbol":"{symbol}","side":"{side}","type":"MARKET","qty":{qty},"timeInForce":"IOC"}}"#
                );
                (b, 0)
            } else {
                // Resting: 2–6 % on the passive side of the market.
                let off = mid * rng.u64(2..7) / 100;
                let price = if side == "BUY" { mid - off } else { mid + off };
                let b = format!(
                    r#"{{"symbol":"{symbol}","side":"{side}","type":"LIMIT","qty":{qty},"price":{price},"timeInForce":"GTC"}}"#
                );
                (b, price)
            };
            let key = format!("demo-{run_key}-{n}");
            let (code, body) = post(&args.target, "/orders", &tokens[account], Some(&key), &body)?;
            let id = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["orderId"].as_str().map(str::to_string))
                .filter(|id| !id.is_empty());
            if let (Some(id), false) = (&id, marketable) {
                resting.push(Resting {
                    account,
                    order_id: id.clone(),
                    price,
                });
                // Bounded: the oldest resting orders are left to the venue.
                if resting.len() > 200 {
                    resting.remove(0);
                }
            }
            format!(
                "place demo-{account} {side} {qty} {symbol} {} → {code} {}",
                if marketable { "MARKET" } else { "LIMIT" },
                id.unwrap_or_default()
            )
        };
        println!("{line}");
        next += period;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    Ok(())
}

/// One `POST` on its own connection; (status, body).
fn post(
    target: &str,
    path: &str,
    token: &str,
    key: Option<&str>,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect(target)
        .map_err(|e| anyhow::anyhow!("connecting to the gateway at {target}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let key = key.map_or(String::new(), |k| format!("Idempotency-Key: {k}\r\n"));
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {target}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\n{key}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((code, body))
}
