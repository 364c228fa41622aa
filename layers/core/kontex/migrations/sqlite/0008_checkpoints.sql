-- Checkpoints shaped like LangGraph's (docs/design.md, "Checkpoints"), over ordinary sessions,
-- tasks and snapshots: a thread is a session, each checkpoint namespace of it a task, and a
-- checkpoint an index row naming the snapshot that holds its state. Pending writes wait in
-- their own table. Every row carries its session, so a session purge takes them with it.
CREATE TABLE checkpoint_threads (
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    thread_id   TEXT NOT NULL,
    ns          TEXT NOT NULL,
    session_id  TEXT NOT NULL REFERENCES sessions(id),
    task_id     TEXT NOT NULL REFERENCES tasks(id),
    created_at  KTIME NOT NULL,
    PRIMARY KEY (account_id, thread_id, ns)
);
CREATE INDEX checkpoint_threads_session ON checkpoint_threads(session_id);

CREATE TABLE checkpoints (
    account_id     TEXT NOT NULL,
    thread_id      TEXT NOT NULL,
    ns             TEXT NOT NULL,
    checkpoint_id  TEXT NOT NULL,
    parent_id      TEXT,
    session_id     TEXT NOT NULL REFERENCES sessions(id),
    snapshot_id    TEXT NOT NULL REFERENCES snapshots(id),
    metadata       KJSON NOT NULL DEFAULT '{}',
    run_id         TEXT,
    created_at     KTIME NOT NULL,
    PRIMARY KEY (account_id, thread_id, ns, checkpoint_id)
) WITHOUT ROWID;
CREATE INDEX checkpoints_session ON checkpoints(session_id);
CREATE INDEX checkpoints_run ON checkpoints(account_id, run_id) WHERE run_id IS NOT NULL;

CREATE TABLE checkpoint_writes (
    account_id     TEXT NOT NULL,
    thread_id      TEXT NOT NULL,
    ns             TEXT NOT NULL,
    checkpoint_id  TEXT NOT NULL,
    task_id        TEXT NOT NULL,
    idx            INTEGER NOT NULL,
    channel        TEXT NOT NULL,
    value          TEXT NOT NULL,
    task_path      TEXT NOT NULL DEFAULT '',
    session_id     TEXT NOT NULL REFERENCES sessions(id),
    PRIMARY KEY (account_id, thread_id, ns, checkpoint_id, task_id, idx)
) WITHOUT ROWID;
CREATE INDEX checkpoint_writes_session ON checkpoint_writes(session_id);
