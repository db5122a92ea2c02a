-- The back office's books (SQLite): the same tables as migrations/postgres.

CREATE TABLE ledger (
    id               INTEGER PRIMARY KEY,
    at               TEXT    NOT NULL,
    at_ms            INTEGER,
    entry_type       TEXT    NOT NULL CHECK (entry_type IN ('OrderAccepted', 'Fill')),
    account_id       TEXT    NOT NULL,
    order_id         TEXT    NOT NULL,
    symbol           TEXT    NOT NULL,
    side             TEXT    NOT NULL CHECK (side IN ('BUY', 'SELL')),
    filled_qty_delta INTEGER,
    filled_qty_total INTEGER,
    price            INTEGER,
    quote_ccy        TEXT,
    quote_cash_delta INTEGER,
    fee_quote        INTEGER,
    source           TEXT,
    seq              INTEGER,
    CHECK (entry_type = 'OrderAccepted' OR (filled_qty_delta > 0 AND filled_qty_total IS NOT NULL
           AND quote_ccy IS NOT NULL AND quote_cash_delta IS NOT NULL AND fee_quote IS NOT NULL))
);
CREATE INDEX ledger_account_id ON ledger (account_id, id);
CREATE INDEX ledger_order_id ON ledger (order_id, id);

CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only');
END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only');
END;

CREATE TABLE order_meta (
    order_id   TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    symbol     TEXT NOT NULL,
    side       TEXT NOT NULL
);
CREATE INDEX order_meta_account ON order_meta (account_id);

CREATE TABLE order_filled_total (
    order_id     TEXT PRIMARY KEY,
    filled_total INTEGER NOT NULL
);

CREATE TABLE positions (
    account_id TEXT    NOT NULL,
    symbol     TEXT    NOT NULL,
    net_qty    INTEGER NOT NULL,
    avg_price  INTEGER,
    PRIMARY KEY (account_id, symbol)
);

CREATE TABLE balances (
    account_id TEXT    NOT NULL,
    currency   TEXT    NOT NULL,
    amount     INTEGER NOT NULL,
    PRIMARY KEY (account_id, currency)
);

CREATE TABLE realized_pnl (
    account_id   TEXT    NOT NULL,
    symbol       TEXT    NOT NULL,
    quote_ccy    TEXT    NOT NULL,
    realized_pnl INTEGER NOT NULL,
    PRIMARY KEY (account_id, symbol, quote_ccy)
);

CREATE TABLE seen_events (
    source TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (source, seq)
);

CREATE TABLE consumer_positions (
    stream        TEXT    NOT NULL,
    partition_id  INTEGER NOT NULL,
    next_offset   INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (stream, partition_id)
);
