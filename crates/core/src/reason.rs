//! Every reason the gateway gives for not accepting an order, and everything that follows from
//! it — who is to blame, whether a retry may help, the HTTP status, the response `status`
//! word and the binary protocol's reason code — decided here and nowhere else.

/// Who caused a refusal. It decides 4xx versus 5xx and what an operator should look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The request itself is wrong or not allowed: fix the request.
    Client,
    /// A venue refused or failed.
    Venue,
    /// The gateway is protecting itself (overload, kill switch, storage failure).
    Internal,
}

/// The `status` word of a refusal in v3 bodies and the `kind` byte of v3 binary responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Rejected,
    Killed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Rejected => "REJECTED",
            Verdict::Killed => "KILLED",
        }
    }

    /// Binary response `kind` byte (§2.4): 1 = REJECTED, 2 = KILLED.
    pub fn tcp_kind(self) -> u8 {
        match self {
            Verdict::Rejected => 1,
            Verdict::Killed => 2,
        }
    }
}

/// How the reference's gates count a refusal in `accepted_rate`
/// (= accepted / (accepted + soft + hard + killed)); client errors are not counted there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    None,
    Soft,
    Hard,
    Killed,
}

macro_rules! reasons {
    ($( $variant:ident => $name:literal, $http:literal, $verdict:ident, $blame:ident, $retry:literal, $tcp:literal; )*) => {
        /// A refusal reason. The string is the reference's reason word, kept byte for byte.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Reason { $( $variant, )* }

        impl Reason {
            pub const ALL: &'static [Reason] = &[ $( Reason::$variant, )* ];

            pub fn as_str(self) -> &'static str {
                match self { $( Reason::$variant => $name, )* }
            }

            pub fn http_status(self) -> u16 {
                match self { $( Reason::$variant => $http, )* }
            }

            pub fn verdict(self) -> Verdict {
                match self { $( Reason::$variant => Verdict::$verdict, )* }
            }

            pub fn blame(self) -> Blame {
                match self { $( Reason::$variant => Blame::$blame, )* }
            }

            /// Whether sending the same request again later may succeed without changing it.
            pub fn retryable(self) -> bool {
                match self { $( Reason::$variant => $retry, )* }
            }

            /// v3 binary response reason code (§2.4; codes above the reference's are
            /// Switchyard's additions for checks the reference never enforced).
            pub fn tcp_code(self) -> u32 {
                match self { $( Reason::$variant => $tcp, )* }
            }

            pub fn from_tcp_code(code: u32) -> Option<Reason> {
                Self::ALL.iter().copied().find(|r| r.tcp_code() == code && code != 9999)
            }

            pub fn parse(s: &str) -> Option<Reason> {
                match s { $( $name => Some(Reason::$variant), )* _ => None }
            }
        }
    };
}

reasons! {
    // Client errors found by the stateless checks (§2.3.1 rows 4–8).
    InvalidSide => "INVALID_SIDE", 422, Rejected, Client, false, 1002;
    InvalidQty => "INVALID_QTY", 422, Rejected, Client, false, 1001;
    InvalidSymbol => "INVALID_SYMBOL", 422, Rejected, Client, false, 1004;
    InvalidPrice => "INVALID_PRICE", 422, Rejected, Client, false, 1003;
    RiskReject => "RISK_REJECT", 422, Rejected, Client, false, 1100;
    // Per-account rules the reference configured (Kotlin) but v3 never enforced.
    SymbolNotAllowed => "SYMBOL_NOT_ALLOWED", 422, Rejected, Client, false, 1101;
    SideNotAllowed => "SIDE_NOT_ALLOWED", 422, Rejected, Client, false, 1102;
    TypeNotAllowed => "TYPE_NOT_ALLOWED", 422, Rejected, Client, false, 1103;
    PriceTooLow => "PRICE_TOO_LOW", 422, Rejected, Client, false, 1104;
    PriceTooHigh => "PRICE_TOO_HIGH", 422, Rejected, Client, false, 1105;
    PriceOutsideCollar => "PRICE_OUTSIDE_COLLAR", 422, Rejected, Client, false, 1106;
    // Stateful limits: they may clear later (new day, fills, cancels), hence retryable.
    DailyNotionalLimit => "DAILY_NOTIONAL_LIMIT", 422, Rejected, Client, true, 1107;
    PositionLimit => "POSITION_LIMIT", 422, Rejected, Client, true, 1108;
    RateLimited => "RATE_LIMITED", 429, Rejected, Client, true, 1109;
    MissingExpireAt => "MISSING_EXPIRE_AT", 422, Rejected, Client, false, 1110;
    ExpireAtInPast => "EXPIRE_AT_IN_PAST", 422, Rejected, Client, false, 1111;
    InvalidType => "INVALID_TYPE", 422, Rejected, Client, false, 1112;
    InvalidTimeInForce => "INVALID_TIME_IN_FORCE", 422, Rejected, Client, false, 1113;
    // Scale-out: another gateway instance serves this account (421 Misdirected Request).
    AccountNotOwned => "ACCOUNT_NOT_OWNED", 421, Rejected, Client, false, 1114;
    // Durable-path admission (§2.3.1 rows 9–12); Switchyard measures the journal backlog.
    DurableConfirmAgeHard => "V3_DURABLE_CONFIRM_AGE_HARD", 503, Rejected, Internal, true, 9999;
    DurableConfirmAgeSoft => "V3_DURABLE_CONFIRM_AGE_SOFT", 429, Rejected, Internal, true, 9999;
    DurableBackpressureSoft => "V3_DURABLE_BACKPRESSURE_SOFT", 429, Rejected, Internal, true, 2001;
    DurableBackpressureHard => "V3_DURABLE_BACKPRESSURE_HARD", 503, Rejected, Internal, true, 2002;
    // The journal cannot take new orders: its volume is below the disk reserve, or a commit
    // failed moments ago (Switchyard addition; the reference kept accepting and lost them).
    JournalUnavailable => "V3_JOURNAL_UNAVAILABLE", 503, Rejected, Internal, true, 2003;
    // Shard ingress watermarks (§3.5).
    BackpressureSoft => "V3_BACKPRESSURE_SOFT", 429, Rejected, Internal, true, 2101;
    BackpressureHard => "V3_BACKPRESSURE_HARD", 503, Rejected, Internal, true, 2102;
    QueueKilled => "V3_QUEUE_KILLED", 503, Killed, Internal, false, 2201;
    QueueFull => "V3_QUEUE_FULL", 503, Killed, Internal, false, 2202;
    IngressClosed => "V3_INGRESS_CLOSED", 503, Killed, Internal, false, 2203;
    // Kill switches (§2.3.1 rows 1–3, plus the account level Switchyard adds).
    GlobalKilled => "V3_GLOBAL_KILLED", 503, Killed, Internal, false, 2301;
    SessionKilled => "V3_SESSION_KILLED", 503, Killed, Internal, false, 2302;
    ShardKilled => "V3_SHARD_KILLED", 503, Killed, Internal, false, 2303;
    AccountKilled => "V3_ACCOUNT_KILLED", 503, Killed, Internal, false, 2304;
    // The durable path `/orders` (§2.3.3–2.3.4, §3.5); not reachable over binary TCP.
    IdempotencyRequired => "IDEMPOTENCY_REQUIRED", 400, Rejected, Client, false, 9999;
    InvalidIdempotencyKey => "INVALID_IDEMPOTENCY_KEY", 400, Rejected, Client, false, 9999;
    InvalidDurability => "INVALID_DURABILITY", 400, Rejected, Client, false, 9999;
    DurabilityUnavailable => "DURABILITY_LEVEL_UNAVAILABLE", 501, Rejected, Internal, false, 9999;
    BackpressureInflightSoft => "BACKPRESSURE_INFLIGHT_SOFT", 429, Rejected, Internal, true, 9999;
    BackpressureDurableRateDecline => "BACKPRESSURE_DURABLE_RATE_DECLINE", 429, Rejected, Internal, true, 9999;
    BackpressureInflight => "BACKPRESSURE_INFLIGHT", 503, Rejected, Internal, true, 9999;
    BackpressureWalBytes => "BACKPRESSURE_WAL_BYTES", 503, Rejected, Internal, true, 9999;
    BackpressureWalAge => "BACKPRESSURE_WAL_AGE", 503, Rejected, Internal, true, 9999;
    BackpressureDiskFree => "BACKPRESSURE_DISK_FREE", 503, Rejected, Internal, true, 9999;
    BackpressureSoftWalAge => "BACKPRESSURE_SOFT_WAL_AGE", 429, Rejected, Internal, true, 9999;
    DurableJournalUnavailable => "JOURNAL_UNAVAILABLE", 503, Rejected, Internal, true, 9999;
    QueueReject => "QUEUE_REJECT", 503, Rejected, Internal, true, 9999;
    OrderStoreFull => "ORDER_STORE_FULL", 503, Rejected, Internal, true, 9999;
    WalDurabilityFailed => "WAL_DURABILITY_FAILED", 500, Rejected, Internal, true, 9999;
    DurabilityWaitTimeout => "DURABILITY_WAIT_TIMEOUT", 503, Rejected, Internal, true, 9999;
    OrderFinal => "ORDER_FINAL", 409, Rejected, Client, false, 9999;
    // Amend (`POST /orders/{id}/amend`), which the reference does not have.
    InvalidAmend => "INVALID_AMEND", 400, Rejected, Client, false, 9999;
    AmendNotAllowed => "AMEND_NOT_ALLOWED", 422, Rejected, Client, false, 9999;
    AmendPending => "AMEND_PENDING", 409, Rejected, Client, true, 9999;
    CancelPending => "CANCEL_PENDING", 409, Rejected, Client, false, 9999;
}

impl Reason {
    /// Which `gateway_v3_rejected_*_total` counter a refusal feeds.
    pub fn pressure(self) -> Pressure {
        if self.verdict() == Verdict::Killed {
            return Pressure::Killed;
        }
        match (self.blame(), self.http_status()) {
            (Blame::Internal, 429) => Pressure::Soft,
            (Blame::Internal, _) => Pressure::Hard,
            _ => Pressure::None,
        }
    }
}

/// Why a v3 order that was accepted did not become durable (§2.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConfirmReason {
    None = 0,
    WalDurabilityFailed = 1,
    DurabilityQueueFull = 2,
    DurabilityQueueClosed = 3,
    DurableConfirmTimeout = 4,
    IngressQueueFull = 5,
    IngressClosed = 6,
    /// Acknowledged before a crash but not in the journal after it (Switchyard addition).
    LostOnRestart = 7,
}

impl ConfirmReason {
    pub fn as_str(self) -> Option<&'static str> {
        Some(match self {
            ConfirmReason::None => return None,
            ConfirmReason::WalDurabilityFailed => "WAL_DURABILITY_FAILED",
            ConfirmReason::DurabilityQueueFull => "DURABILITY_QUEUE_FULL",
            ConfirmReason::DurabilityQueueClosed => "DURABILITY_QUEUE_CLOSED",
            ConfirmReason::DurableConfirmTimeout => "DURABLE_CONFIRM_TIMEOUT",
            ConfirmReason::IngressQueueFull => "V3_INGRESS_QUEUE_FULL",
            ConfirmReason::IngressClosed => "V3_INGRESS_CLOSED",
            ConfirmReason::LostOnRestart => "V3_LOST_ON_RESTART",
        })
    }

    pub fn from_u8(v: u8) -> ConfirmReason {
        match v {
            1 => ConfirmReason::WalDurabilityFailed,
            2 => ConfirmReason::DurabilityQueueFull,
            3 => ConfirmReason::DurabilityQueueClosed,
            4 => ConfirmReason::DurableConfirmTimeout,
            5 => ConfirmReason::IngressQueueFull,
            6 => ConfirmReason::IngressClosed,
            7 => ConfirmReason::LostOnRestart,
            _ => ConfirmReason::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the reference's reason words, statuses and binary codes are kept exactly.
    #[test]
    fn reference_contract_values() {
        let expect = [
            (Reason::InvalidQty, "INVALID_QTY", 422, 1001),
            (Reason::InvalidSide, "INVALID_SIDE", 422, 1002),
            (Reason::InvalidPrice, "INVALID_PRICE", 422, 1003),
            (Reason::InvalidSymbol, "INVALID_SYMBOL", 422, 1004),
            (Reason::RiskReject, "RISK_REJECT", 422, 1100),
            (
                Reason::DurableBackpressureSoft,
                "V3_DURABLE_BACKPRESSURE_SOFT",
                429,
                2001,
            ),
            (
                Reason::DurableBackpressureHard,
                "V3_DURABLE_BACKPRESSURE_HARD",
                503,
                2002,
            ),
            (Reason::BackpressureSoft, "V3_BACKPRESSURE_SOFT", 429, 2101),
            (Reason::BackpressureHard, "V3_BACKPRESSURE_HARD", 503, 2102),
            (Reason::QueueKilled, "V3_QUEUE_KILLED", 503, 2201),
            (Reason::QueueFull, "V3_QUEUE_FULL", 503, 2202),
            (Reason::IngressClosed, "V3_INGRESS_CLOSED", 503, 2203),
            (Reason::GlobalKilled, "V3_GLOBAL_KILLED", 503, 2301),
            (Reason::SessionKilled, "V3_SESSION_KILLED", 503, 2302),
            (Reason::ShardKilled, "V3_SHARD_KILLED", 503, 2303),
            (
                Reason::DurableConfirmAgeHard,
                "V3_DURABLE_CONFIRM_AGE_HARD",
                503,
                9999,
            ),
        ];
        for (r, name, http, code) in expect {
            assert_eq!(r.as_str(), name);
            assert_eq!(r.http_status(), http, "{name}");
            assert_eq!(r.tcp_code(), code, "{name}");
            assert_eq!(Reason::parse(name), Some(r));
        }
    }

    // Goal: blame and status agree everywhere (client → 4xx, ours → 429/5xx), codes are unique.
    #[test]
    fn blame_status_consistency() {
        let mut codes = std::collections::HashSet::new();
        for &r in Reason::ALL {
            match r.blame() {
                Blame::Client => assert!(matches!(r.http_status(), 400 | 409 | 421 | 422 | 429)),
                Blame::Internal => assert!(matches!(r.http_status(), 429 | 500 | 501 | 503)),
                Blame::Venue => {}
            }
            if r.verdict() == Verdict::Killed {
                assert_eq!(r.http_status(), 503);
                assert!(!r.retryable());
            }
            if r.tcp_code() != 9999 {
                assert!(
                    codes.insert(r.tcp_code()),
                    "duplicate code {}",
                    r.tcp_code()
                );
                assert_eq!(Reason::from_tcp_code(r.tcp_code()), Some(r));
            }
        }
        assert_eq!(Reason::BackpressureSoft.pressure(), Pressure::Soft);
        assert_eq!(Reason::BackpressureHard.pressure(), Pressure::Hard);
        assert_eq!(Reason::QueueKilled.pressure(), Pressure::Killed);
        assert_eq!(Reason::InvalidQty.pressure(), Pressure::None);
    }
}
