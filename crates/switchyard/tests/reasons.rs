//! Every order-level refusal reason of §2.3.1 and Switchyard's per-account additions, reached
//! over the wire: the HTTP body's `status`/`reason` with its HTTP status, and the v3 binary
//! response's kind/status/reason code (§2.4).

mod common;

use common::*;

fn risk_gateway(dir: &std::path::Path) -> Gateway {
    Gateway::start(
        dir,
        &[
            ("V3_SHARD_COUNT", "1"),
            // AAPL: symbol max qty 100; MSFT: symbol max notional 5 000; the rest default.
            (
                "V3_RISK_SYMBOL_LIMITS",
                "AAPL:100,MSFT:10000:5000,BTC,ETH,SOL",
            ),
        ],
    )
}

fn body(v: serde_json::Value) -> String {
    v.to_string()
}

// Goal: the stateless checks and request-word checks answer 422 REJECTED with their reason over HTTP.
#[test]
fn stateless_reasons_over_http() {
    // The stateless checks of §2.3.1 rows 4–8 and the request-word checks answer 422 REJECTED with
    // their reason over HTTP (qty 0, too big for the global or the symbol limit, negative,
    // fractional; bad and unknown symbols; missing/zero/negative price; notional over the global or
    // symbol limit; bad type, time in force, GTD expiry), and none of them spends a sequence
    // number.
    let dir = tempfile::tempdir().unwrap();
    let gw = risk_gateway(dir.path());
    let tok = token("risk-http");
    use serde_json::json;
    let cases: Vec<(&str, String, &str)> = vec![
        ("side HOLD", body(json!({"symbol":"BTC","side":"HOLD","type":"LIMIT","qty":1,"price":100})), "INVALID_SIDE"),
        ("side empty", body(json!({"symbol":"BTC","side":"","type":"LIMIT","qty":1,"price":100})), "INVALID_SIDE"),
        ("qty 0", order_body("BTC", "BUY", "LIMIT", 0, Some(100)), "INVALID_QTY"),
        ("qty over MAX_ORDER_QTY", order_body("BTC", "BUY", "LIMIT", 10_001, Some(1)), "INVALID_QTY"),
        ("qty over the symbol's max", order_body("AAPL", "BUY", "LIMIT", 101, Some(1)), "INVALID_QTY"),
        ("qty negative", order_body("BTC", "BUY", "LIMIT", -5, Some(100)), "INVALID_QTY"),
        ("qty fractional", body(json!({"symbol":"BTC","side":"BUY","type":"LIMIT","qty":1.5,"price":100})), "INVALID_QTY"),
        ("qty beyond u64", r#"{"symbol":"BTC","side":"BUY","type":"LIMIT","qty":123456789012345678901234567890,"price":100}"#.into(), "INVALID_QTY"),
        // Side is checked before qty (§2.3.1 row 4 before row 5).
        ("bad side and qty", order_body("BTC", "HOLD", "LIMIT", 0, Some(100)), "INVALID_SIDE"),
        ("symbol with a space", order_body("BT C", "BUY", "LIMIT", 1, Some(100)), "INVALID_SYMBOL"),
        ("symbol too long", order_body("ABCDEFGHI", "BUY", "LIMIT", 1, Some(100)), "INVALID_SYMBOL"),
        ("symbol empty", order_body("", "BUY", "LIMIT", 1, Some(100)), "INVALID_SYMBOL"),
        ("unknown symbol, strict", order_body("ZZZZ", "BUY", "LIMIT", 1, Some(100)), "INVALID_SYMBOL"),
        // Qty is checked before the symbol (row 5 before row 6).
        ("bad qty and symbol", order_body("ZZZZ", "BUY", "LIMIT", 0, Some(100)), "INVALID_QTY"),
        ("LIMIT price 0", order_body("BTC", "BUY", "LIMIT", 1, Some(0)), "INVALID_PRICE"),
        ("LIMIT price missing", order_body("BTC", "BUY", "LIMIT", 1, None), "INVALID_PRICE"),
        ("LIMIT price null", body(json!({"symbol":"BTC","side":"BUY","type":"LIMIT","qty":1,"price":null})), "INVALID_PRICE"),
        ("LIMIT price negative", order_body("BTC", "BUY", "LIMIT", 1, Some(-1)), "INVALID_PRICE"),
        ("notional over MAX_NOTIONAL", order_body("BTC", "BUY", "LIMIT", 10_000, Some(1_000_000)), "RISK_REJECT"),
        ("notional over the symbol's max", order_body("MSFT", "SELL", "LIMIT", 10, Some(501)), "RISK_REJECT"),
        ("type STOP", order_body("BTC", "BUY", "STOP", 1, Some(100)), "INVALID_TYPE"),
        ("time in force FOK", body(json!({"symbol":"BTC","side":"BUY","type":"LIMIT","qty":1,"price":100,"timeInForce":"FOK"})), "INVALID_TIME_IN_FORCE"),
        ("GTD without expireAt", body(json!({"symbol":"BTC","side":"BUY","type":"LIMIT","qty":1,"price":100,"timeInForce":"GTD"})), "MISSING_EXPIRE_AT"),
        ("GTD expireAt null", body(json!({"symbol":"BTC","side":"BUY","type":"LIMIT","qty":1,"price":100,"timeInForce":"GTD","expireAt":null})), "MISSING_EXPIRE_AT"),
        ("GTD expireAt in 1970", body(json!({"symbol":"BTC","side":"BUY","type":"LIMIT","qty":1,"price":100,"timeInForce":"GTD","expireAt":1000})), "EXPIRE_AT_IN_PAST"),
        ("GTD expireAt negative", body(json!({"symbol":"BTC","side":"BUY","type":"LIMIT","qty":1,"price":100,"timeInForce":"GTD","expireAt":-1})), "EXPIRE_AT_IN_PAST"),
    ];
    for (what, b, reason) in &cases {
        let r = post_order(gw.http, &tok, b);
        assert_refused(&r, 422, "REJECTED", reason);
        assert_eq!(r.json()["sessionId"], "risk-http", "{what}");
    }
    // The boundaries themselves are accepted: symbol max qty, symbol max notional, MARKET
    // without a price, lower-case words, a GTD order expiring in the future.
    let future = (switchyard_auth::now_sec() + 3600) * 1000;
    let fine = [
        order_body("AAPL", "BUY", "LIMIT", 100, Some(1)),
        order_body("MSFT", "SELL", "LIMIT", 10, Some(500)),
        order_body("BTC", "SELL", "MARKET", 5, None),
        order_body("btc", "buy", "limit", 1, Some(100)),
        body(
            json!({"symbol":"BTC","side":"BUY","type":"LIMIT","qty":1,"price":100,"timeInForce":"GTD","expireAt":future}),
        ),
    ];
    for (i, b) in fine.iter().enumerate() {
        let r = post_order(gw.http, &tok, b);
        // Refusals spent no sequence number: the accepted orders are 1, 2, 3…
        assert_eq!(assert_accepted(&r), i as u64 + 1, "{b}");
    }
    assert!(metric(gw.http, "gateway_v3_rejected_client_total") >= cases.len() as f64);
}

// Goal: over TCP the stateless checks answer kind 1, 422 and codes 1001/1003/1004/1100.
#[test]
fn stateless_reasons_over_tcp() {
    // The same checks over TCP answer kind 1 (REJECTED), status 422 and the reason codes 1001
    // INVALID_QTY, 1003 INVALID_PRICE, 1004 INVALID_SYMBOL, 1100 RISK_REJECT (a bad side cannot
    // reach risk over TCP: it is decode error 103, see tcp.rs); MARKET ignores the price.
    let dir = tempfile::tempdir().unwrap();
    let gw = risk_gateway(dir.path());
    let tok = token("risk-tcp");
    let frames = vec![
        (frame(&tok, "BTC", 1, 1, 0, 100), 1001),
        (frame(&tok, "BTC", 1, 1, 10_001, 1), 1001),
        (frame(&tok, "AAPL", 2, 1, 101, 1), 1001),
        (frame(&tok, "ZZZZ", 1, 1, 1, 100), 1004),
        (frame(&tok, "BAD SYM", 1, 1, 1, 100), 1004),
        (frame(&tok, "ABCDEFGHIJ", 1, 1, 1, 100), 1004),
        (frame(&tok, "BTC", 1, 1, 1, 0), 1003),
        (frame(&tok, "BTC", 1, 1, 10_000, 1_000_000), 1100),
        (frame(&tok, "MSFT", 1, 1, 10, 501), 1100),
        (frame(&tok, "BTC", 1, 2, 1, 0), 0),
        (frame(&tok, "BTC", 2, 2, 1, u64::MAX), 0),
    ];
    let mut s = tcp_connect(gw.tcp);
    let (fs, codes): (Vec<_>, Vec<_>) = frames.into_iter().unzip();
    let resp = tcp_exchange(&mut s, &fs);
    let mut seq = 0;
    for (r, code) in resp.iter().zip(codes) {
        if code == 0 {
            seq += 1;
            assert_eq!(
                (r.kind, r.status, r.session_seq, r.attempt_seq),
                (KIND_ACCEPT, 202, seq, seq),
                "{r:?}"
            );
        } else {
            assert_frame(r, KIND_REJECTED, 422, code);
        }
    }
}

const ACCOUNTS_TOML: &str = r#"
[risk]
symbol_limits = "AAPL,MSFT,BTC,ETH"

[risk.accounts.only-aapl]
allowed_symbols = ["AAPL"]

[risk.accounts.buy-only]
allowed_sides = "BUY"

[risk.accounts.limit-only]
allow_market = false

[risk.accounts.banded]
min_price = 100
max_price = 200

[risk.accounts.daily]
daily_notional_limit = 1000

[risk.accounts.pos]
max_abs_position_qty = 10

[risk.accounts.rated]
rate_per_sec = 1
rate_burst = 3
"#;

fn accounts_gateway(dir: &std::path::Path) -> (Gateway, tempfile::TempDir) {
    let cfg_dir = tempfile::tempdir().unwrap();
    let path = cfg_dir.path().join("switchyard.toml");
    std::fs::write(&path, ACCOUNTS_TOML).unwrap();
    let gw = Gateway::start_with_config(
        dir,
        Some(&path),
        &[
            ("V3_SHARD_COUNT", "1"),
            // ETH: price band 10..=20; BTC: reference 10 000 with a 1 % collar.
            ("V3_RISK_SYMBOL_PRICE_BANDS", "ETH:10:20"),
            ("V3_RISK_SYMBOL_COLLARS", "BTC:10000:100"),
            // Global stateful limits, for accounts without their own.
            ("V3_RISK_DAILY_NOTIONAL_LIMIT", "100000"),
            ("V3_RISK_MAX_ABS_POSITION_QTY", "500"),
        ],
    );
    (gw, cfg_dir)
}

/// Sends `b` over HTTP expecting `reason` (422 unless said otherwise) and the same order as a
/// frame expecting `code`.
fn refuse_both(
    gw: &Gateway,
    account: &str,
    b: &str,
    f: Vec<u8>,
    http: u16,
    reason: &str,
    code: u32,
) {
    let r = post_order(gw.http, &token(account), b);
    assert_refused(&r, http, "REJECTED", reason);
    let r = tcp_one(gw.tcp, f);
    assert_frame(&r, KIND_REJECTED, http, code);
}

// Goal: per-account TOML rules and symbol bands/collars refuse with codes 1101–1106 over HTTP and TCP.
#[test]
fn account_rule_reasons() {
    // Per-account rules from the TOML file (`[risk.accounts.<name>]`) and per-symbol bands and
    // collars from the environment refuse with SYMBOL_NOT_ALLOWED 1101, SIDE_NOT_ALLOWED 1102,
    // TYPE_NOT_ALLOWED 1103, PRICE_TOO_LOW 1104, PRICE_TOO_HIGH 1105, PRICE_OUTSIDE_COLLAR 1106,
    // over HTTP (422) and TCP; other accounts are not affected.
    let dir = tempfile::tempdir().unwrap();
    let (gw, _cfg) = accounts_gateway(dir.path());
    let t = |a: &str| token(a);
    refuse_both(
        &gw,
        "only-aapl",
        &order_body("MSFT", "BUY", "LIMIT", 1, Some(100)),
        frame(&t("only-aapl"), "MSFT", 1, 1, 1, 100),
        422,
        "SYMBOL_NOT_ALLOWED",
        1101,
    );
    assert_accepted(&post_order(
        gw.http,
        &t("only-aapl"),
        &order_body("AAPL", "BUY", "LIMIT", 1, Some(100)),
    ));
    refuse_both(
        &gw,
        "buy-only",
        &order_body("AAPL", "SELL", "LIMIT", 1, Some(100)),
        frame(&t("buy-only"), "AAPL", 2, 1, 1, 100),
        422,
        "SIDE_NOT_ALLOWED",
        1102,
    );
    assert_accepted(&post_order(
        gw.http,
        &t("buy-only"),
        &order_body("AAPL", "BUY", "LIMIT", 1, Some(100)),
    ));
    refuse_both(
        &gw,
        "limit-only",
        &order_body("AAPL", "BUY", "MARKET", 1, None),
        frame(&t("limit-only"), "AAPL", 1, 2, 1, 0),
        422,
        "TYPE_NOT_ALLOWED",
        1103,
    );
    assert_accepted(&post_order(
        gw.http,
        &t("limit-only"),
        &order_body("AAPL", "BUY", "LIMIT", 1, Some(100)),
    ));
    // Account band 100..=200.
    refuse_both(
        &gw,
        "banded",
        &order_body("AAPL", "BUY", "LIMIT", 1, Some(99)),
        frame(&t("banded"), "AAPL", 1, 1, 1, 99),
        422,
        "PRICE_TOO_LOW",
        1104,
    );
    refuse_both(
        &gw,
        "banded",
        &order_body("AAPL", "BUY", "LIMIT", 1, Some(201)),
        frame(&t("banded"), "AAPL", 1, 1, 1, 201),
        422,
        "PRICE_TOO_HIGH",
        1105,
    );
    assert_accepted(&post_order(
        gw.http,
        &t("banded"),
        &order_body("AAPL", "BUY", "LIMIT", 1, Some(200)),
    ));
    // Symbol band ETH 10..=20 applies to everyone.
    refuse_both(
        &gw,
        "anyone",
        &order_body("ETH", "BUY", "LIMIT", 1, Some(9)),
        frame(&t("anyone"), "ETH", 1, 1, 1, 9),
        422,
        "PRICE_TOO_LOW",
        1104,
    );
    refuse_both(
        &gw,
        "anyone",
        &order_body("ETH", "SELL", "LIMIT", 1, Some(21)),
        frame(&t("anyone"), "ETH", 2, 1, 1, 21),
        422,
        "PRICE_TOO_HIGH",
        1105,
    );
    // BTC collar: 10 000 ± 1 % = 9 900..=10 100.
    refuse_both(
        &gw,
        "anyone",
        &order_body("BTC", "BUY", "LIMIT", 1, Some(10_101)),
        frame(&t("anyone"), "BTC", 1, 1, 1, 10_101),
        422,
        "PRICE_OUTSIDE_COLLAR",
        1106,
    );
    refuse_both(
        &gw,
        "anyone",
        &order_body("BTC", "SELL", "LIMIT", 1, Some(9_899)),
        frame(&t("anyone"), "BTC", 2, 1, 1, 9_899),
        422,
        "PRICE_OUTSIDE_COLLAR",
        1106,
    );
    for p in [9_900, 10_100] {
        assert_accepted(&post_order(
            gw.http,
            &t("anyone"),
            &order_body("BTC", "BUY", "LIMIT", 1, Some(p)),
        ));
    }
    // Stateless account checks come after the reference's rows: an unknown symbol is still
    // INVALID_SYMBOL for a restricted account.
    let r = post_order(
        gw.http,
        &t("only-aapl"),
        &order_body("ZZZZ", "BUY", "LIMIT", 1, Some(100)),
    );
    assert_refused(&r, 422, "REJECTED", "INVALID_SYMBOL");
}

// Goal: daily notional and position limits (per account and global) refuse exactly at the limit (1107, 1108).
#[test]
fn stateful_limit_reasons() {
    // The stateful limits refuse exactly when the accepted total would pass them:
    // DAILY_NOTIONAL_LIMIT 1107 and POSITION_LIMIT 1108 (per account from TOML, and global from
    // V3_RISK_DAILY_NOTIONAL_LIMIT / V3_RISK_MAX_ABS_POSITION_QTY), an order towards flat is always
    // allowed, and a refusal reserves nothing.
    let dir = tempfile::tempdir().unwrap();
    let (gw, _cfg) = accounts_gateway(dir.path());
    let t = |a: &str| token(a);
    // Per account: daily 1 000.
    assert_accepted(&post_order(
        gw.http,
        &t("daily"),
        &order_body("AAPL", "BUY", "LIMIT", 5, Some(100)),
    ));
    refuse_both(
        &gw,
        "daily",
        &order_body("AAPL", "BUY", "LIMIT", 6, Some(100)),
        frame(&t("daily"), "AAPL", 1, 1, 6, 100),
        422,
        "DAILY_NOTIONAL_LIMIT",
        1107,
    );
    // Exactly up to the limit is fine: the refusals above reserved nothing.
    assert_accepted(&post_order(
        gw.http,
        &t("daily"),
        &order_body("AAPL", "SELL", "LIMIT", 5, Some(100)),
    ));
    refuse_both(
        &gw,
        "daily",
        &order_body("AAPL", "BUY", "LIMIT", 1, Some(1)),
        frame(&t("daily"), "AAPL", 1, 1, 1, 1),
        422,
        "DAILY_NOTIONAL_LIMIT",
        1107,
    );
    // Per account: |position| ≤ 10.
    assert_accepted(&post_order(
        gw.http,
        &t("pos"),
        &order_body("AAPL", "BUY", "LIMIT", 10, Some(1)),
    ));
    refuse_both(
        &gw,
        "pos",
        &order_body("AAPL", "BUY", "LIMIT", 1, Some(1)),
        frame(&t("pos"), "AAPL", 1, 1, 1, 1),
        422,
        "POSITION_LIMIT",
        1108,
    );
    let r = tcp_one(gw.tcp, frame(&t("pos"), "AAPL", 2, 1, 3, 1));
    assert_eq!(
        (r.kind, r.status),
        (KIND_ACCEPT, 202),
        "selling towards flat: {r:?}"
    );
    // Positions are per symbol.
    assert_accepted(&post_order(
        gw.http,
        &t("pos"),
        &order_body("MSFT", "SELL", "LIMIT", 10, Some(1)),
    ));
    // Global limits (daily 100 000, position 500) for an account without its own entry.
    assert_accepted(&post_order(
        gw.http,
        &t("g-daily"),
        &order_body("AAPL", "BUY", "LIMIT", 10, Some(9_000)),
    ));
    refuse_both(
        &gw,
        "g-daily",
        &order_body("AAPL", "BUY", "LIMIT", 2, Some(9_000)),
        frame(&t("g-daily"), "AAPL", 1, 1, 2, 9_000),
        422,
        "DAILY_NOTIONAL_LIMIT",
        1107,
    );
    assert_accepted(&post_order(
        gw.http,
        &t("g-pos"),
        &order_body("AAPL", "SELL", "LIMIT", 500, Some(1)),
    ));
    refuse_both(
        &gw,
        "g-pos",
        &order_body("AAPL", "SELL", "LIMIT", 1, Some(1)),
        frame(&t("g-pos"), "AAPL", 2, 1, 1, 1),
        422,
        "POSITION_LIMIT",
        1108,
    );
}

// Goal: the per-account token bucket lets its burst through, then answers 429 RATE_LIMITED (TCP 1109).
#[test]
fn rate_limited() {
    // The per-account token bucket (rate 1/s, burst 3) lets a burst of 3 through and answers
    // RATE_LIMITED (429; TCP kind 1, 429, 1109) beyond it; other accounts are unaffected.
    let dir = tempfile::tempdir().unwrap();
    let (gw, _cfg) = accounts_gateway(dir.path());
    let tok = token("rated");
    // Ten frames in one write arrive together: the bucket starts full (3), refills 1/s.
    let frames: Vec<_> = (0..10).map(|_| frame(&tok, "AAPL", 1, 1, 1, 100)).collect();
    let mut s = tcp_connect(gw.tcp);
    let resp = tcp_exchange(&mut s, &frames);
    for (i, r) in resp.iter().enumerate().take(3) {
        assert_eq!(
            (r.kind, r.session_seq),
            (KIND_ACCEPT, i as u64 + 1),
            "burst: {r:?}"
        );
    }
    let limited: Vec<_> = resp[3..].iter().filter(|r| r.kind != KIND_ACCEPT).collect();
    assert!(
        !limited.is_empty(),
        "no frame beyond the burst was refused: {resp:?}"
    );
    for r in limited {
        assert_frame(r, KIND_REJECTED, 429, 1109);
    }
    // Over HTTP the bucket is the same (per account): within a few requests one is refused.
    let refused = (0..20)
        .map(|_| post_order(gw.http, &tok, &good_order()))
        .find(|r| r.status != 202)
        .expect("20 HTTP orders at far more than 1/s were all accepted");
    assert_refused(&refused, 429, "REJECTED", "RATE_LIMITED");
    assert_accepted(&post_order(gw.http, &token("unrated"), &good_order()));
}

// Goal: with V3_RISK_STRICT_SYMBOLS=false unknown symbols pass while malformed ones stay INVALID_SYMBOL.
#[test]
fn lenient_symbols() {
    // With V3_RISK_STRICT_SYMBOLS=false an unknown (well-formed) symbol is accepted with the
    // default limits, while a malformed one is still INVALID_SYMBOL.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[("V3_SHARD_COUNT", "1"), ("V3_RISK_STRICT_SYMBOLS", "false")],
    );
    let tok = token("lenient");
    assert_accepted(&post_order(
        gw.http,
        &tok,
        &order_body("ZZZZ", "BUY", "LIMIT", 1, Some(100)),
    ));
    let r = post_order(
        gw.http,
        &tok,
        &order_body("ZZ ZZ", "BUY", "LIMIT", 1, Some(100)),
    );
    assert_refused(&r, 422, "REJECTED", "INVALID_SYMBOL");
    let r = post_order(
        gw.http,
        &tok,
        &order_body("ZZZZ", "BUY", "LIMIT", 10_001, Some(1)),
    );
    assert_refused(&r, 422, "REJECTED", "INVALID_QTY");
}
