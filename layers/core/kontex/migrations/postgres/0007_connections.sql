-- The live feed's WebSocket connections (API Gateway keeps the sockets; we keep who they are).
-- A connection is unauthenticated until its first frame names a valid key (account_id is set
-- then); it expires after 2 hours, API Gateway's limit for one connection.
CREATE TABLE live_connections (
    id             TEXT PRIMARY KEY,
    account_id     TEXT,
    authenticated  BOOLEAN NOT NULL DEFAULT FALSE,
    connected_at   TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX live_connections_expiry ON live_connections(expires_at);

-- Which sessions a connection follows (always sessions of its own account).
CREATE TABLE live_subscriptions (
    connection_id  TEXT NOT NULL REFERENCES live_connections(id) ON DELETE CASCADE,
    account_id     TEXT NOT NULL,
    session_id     TEXT NOT NULL,
    PRIMARY KEY (connection_id, session_id)
);
CREATE INDEX live_subscriptions_session ON live_subscriptions(account_id, session_id);

-- Events posted to connections: a redelivered event is posted once per connection.
CREATE TABLE live_deliveries (
    event_id       TEXT NOT NULL,
    connection_id  TEXT NOT NULL,
    delivered_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (event_id, connection_id)
);
CREATE INDEX live_deliveries_time ON live_deliveries(delivered_at);
