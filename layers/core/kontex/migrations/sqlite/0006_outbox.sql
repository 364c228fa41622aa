-- The outbox: every change that announces itself writes its event here in the same
-- transaction as the change. A relay publishes rows right after the commit and removes them;
-- a sweeper publishes the rows still here after a short delay. Consumers are idempotent
-- by event id, so a row published twice is harmless.
CREATE TABLE outbox (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL,
    session_id   TEXT NOT NULL,
    type         TEXT NOT NULL,
    data         KJSON NOT NULL,
    created_at   KTIME NOT NULL
);
CREATE INDEX outbox_created ON outbox(created_at);
