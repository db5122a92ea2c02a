-- The back office's books (PostgreSQL). Money and quantities are BIGINT minor units.

-- Append-only: one row per booked OrderAccepted or Fill, in booking order (id).
CREATE TABLE ledger (
    id               BIGINT PRIMARY KEY,
    at               TEXT   NOT NULL,
    at_ms            BIGINT,
    entry_type       TEXT   NOT NULL CHECK (entry_type IN ('OrderAccepted', 'Fill')),
    account_id       TEXT   NOT NULL,
    order_id         TEXT   NOT NULL,
    symbol           TEXT   NOT NULL,
    side             TEXT   NOT NULL CHECK (side IN ('BUY', 'SELL')),
    filled_qty_delta BIGINT,
    filled_qty_total BIGINT,
    price            BIGINT,
    quote_ccy        TEXT,
    quote_cash_delta BIGINT,
    fee_quote        BIGINT,
    source           TEXT,
    seq              BIGINT,
    CHECK (entry_type = 'OrderAccepted' OR (filled_qty_delta > 0 AND filled_qty_total IS NOT NULL
           AND quote_ccy IS NOT NULL AND quote_cash_delta IS NOT NULL AND fee_quote IS NOT NULL))
);
CREATE INDEX ledger_account_id ON ledger (account_id, id);
CREATE INDEX ledger_order_id ON ledger (order_id, id);

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only';
END;
$$;
CREATE TRIGGER ledger_no_update BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

CREATE TABLE order_meta (
    order_id   TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    symbol     TEXT NOT NULL,
    side       TEXT NOT NULL
);
CREATE INDEX order_meta_account ON order_meta (account_id);

CREATE TABLE order_filled_total (
    order_id     TEXT PRIMARY KEY,
    filled_total BIGINT NOT NULL
);

CREATE TABLE positions (
    account_id TEXT   NOT NULL,
    symbol     TEXT   NOT NULL,
    net_qty    BIGINT NOT NULL,
    avg_price  BIGINT,
    PRIMARY KEY (account_id, symbol)
);

CREATE TABLE balances (
    account_id TEXT   NOT NULL,
    currency   TEXT   NOT NULL,
    amount     BIGINT NOT NULL,
    PRIMARY KEY (account_id, currency)
);

CREATE TABLE realized_pnl (
    account_id   TEXT   NOT NULL,
    symbol       TEXT   NOT NULL,
    quote_ccy    TEXT   NOT NULL,
    realized_pnl BIGINT NOT NULL,
    PRIMARY KEY (account_id, symbol, quote_ccy)
);

-- Identities (gateway instance, journal seq) of booking events already processed.
CREATE TABLE seen_events (
    source TEXT   NOT NULL,
    seq    BIGINT NOT NULL,
    PRIMARY KEY (source, seq)
);

-- Where each input stream (Kafka topic partition, or a gateway's journal) continues.
CREATE TABLE consumer_positions (
    stream        TEXT   NOT NULL,
    partition_id  BIGINT NOT NULL,
    next_offset   BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (stream, partition_id)
);
