import { useState } from "react";
import { ApiError, qs } from "../api";
import { ms, short, tokens, usd, when } from "../format";
import { useApi, useLoad } from "../hooks";
import { go, href } from "../router";
import { Confirm } from "../components/Confirm";
import { Files, LogEvents, Messages, ToolCalls } from "../components/Content";
import { isCall } from "../components/charts/common";
import type { Bundle, Revision, Snapshot, Task } from "../types";

type Made =
  | { kind: "rollback"; snapshot: Snapshot; source: { id: string; label: string } }
  | { kind: "fork"; snapshot: Snapshot; task: Task; source: { id: string; label: string } };

// What a rollback or fork just made, for the new snapshot's page to say (the page goes there).
let justMade: Made | null = null;

function madeHere(snapshotId: string): Made | null {
  if (justMade && justMade.snapshot.id !== snapshotId) justMade = null;
  return justMade;
}

/** The fork dialog's proposal, and the name the fork gets unless it is changed. */
export function proposedForkName(label: string): string {
  return `Fork of: ${label}`.slice(0, 200);
}

export function SnapshotView({ sessionId, snapshotId }: { sessionId: string; snapshotId: string }) {
  const { api } = useApi();
  const snap = useLoad(() => api.get<Snapshot & { bundle: Bundle }>(`/v1/snapshots/${snapshotId}`), [api, snapshotId]);
  const revisions = useLoad(
    () => api.get<{ data: Revision[] }>(`/v1/snapshots/${snapshotId}/revisions`),
    [api, snapshotId],
  );
  const [revision, setRevision] = useState<number | null>(null);
  const revised = useLoad(
    () =>
      revision === null
        ? Promise.resolve(null)
        : api.get<Bundle>(`/v1/snapshots/${snapshotId}/bundle${qs({ revision })}`),
    [api, snapshotId, revision],
  );
  const [asking, setAsking] = useState<"rollback" | "fork" | null>(null);
  const [forkName, setForkName] = useState("");
  const [busy, setBusy] = useState(false);
  const [made] = useState<Made | null>(() => madeHere(snapshotId));
  const [actionError, setActionError] = useState<string | null>(null);

  function ask(what: "rollback" | "fork") {
    setActionError(null);
    if (what === "fork" && s) setForkName(proposedForkName(s.label));
    setAsking(what);
  }

  async function act() {
    if (!s) return;
    setBusy(true);
    setActionError(null);
    const source = { id: s.id, label: s.label };
    try {
      // then to the new snapshot's page, which says what was made
      if (asking === "rollback") {
        const snapshot = await api.post<Snapshot>(`/v1/snapshots/${snapshotId}/rollback`);
        justMade = { kind: "rollback", snapshot, source };
        go(href.snapshot(snapshot.session_id, snapshot.id));
      } else if (asking === "fork") {
        const name = forkName.trim() || proposedForkName(s.label);
        const result = await api.post<{ task: Task; snapshot: Snapshot }>(`/v1/snapshots/${snapshotId}/fork`, { name });
        justMade = { kind: "fork", ...result, source };
        go(href.snapshot(result.snapshot.session_id, result.snapshot.id));
      }
    } catch (e) {
      setActionError((e as ApiError).message);
      setBusy(false);
    }
  }

  const s = snap.data;
  const call = s && isCall(s) ? s.usage : null;
  const bundle: Bundle | null = revision !== null ? revised.data : (s?.bundle ?? null);
  const revs = revisions.data?.data ?? [];
  return (
    <section aria-labelledby="snapshot-title">
      <nav className="crumbs" aria-label="breadcrumb">
        <a href={href.sessions()}>Sessions</a> › <a href={href.session(sessionId)}>Session</a> ›
      </nav>
      {snap.error && (
        <>
          <h1 id="snapshot-title">{snap.error.status === 404 ? "Snapshot not found" : "The snapshot could not be loaded"}</h1>
          <p className="error" role="alert">{snap.error.message}</p>
        </>
      )}
      {s && (
        <>
          <div className="toolbar">
            <h1 id="snapshot-title">{s.label}</h1>
            <span className="mono muted">{s.id}</span>
            <span className="spacer" />
            {s.parent_snapshot_id && (
              <a className="button" href={href.diff(sessionId, s.parent_snapshot_id, s.id)}>
                Diff with previous
              </a>
            )}
            <button type="button" onClick={() => ask("rollback")}>
              Roll back to this
            </button>
            <button type="button" onClick={() => ask("fork")}>
              Fork from this
            </button>
          </div>

          {made && (
            <div className="card success" role="status" data-testid="action-result">
              {made.kind === "rollback" ? (
                <p>
                  Rolled back: this is the new forward snapshot <span className="mono muted">{made.snapshot.id}</span>,
                  at the head of its task, with the content of{" "}
                  <a href={href.snapshot(sessionId, made.source.id)}>{made.source.label}</a>. History is unchanged.
                </p>
              ) : (
                <p>
                  Forked: this is the first snapshot of the new task <b>{made.task.name}</b>{" "}
                  <span className="mono muted">{made.task.id}</span>, with the content of{" "}
                  <a href={href.snapshot(sessionId, made.source.id)}>{made.source.label}</a>.
                </p>
              )}
              <a href={href.session(made.snapshot.session_id)}>Back to the session</a>
            </div>
          )}

          <dl className="facts">
            <div><dt>Created</dt><dd>{when(s.created_at)}</dd></div>
            <div><dt>Source</dt><dd>{s.source}</dd></div>
            <div><dt>Model</dt><dd>{s.model ?? "—"}</dd></div>
            <div><dt>Tokens</dt><dd>{tokens(bundle?.token_total ?? s.token_total)}</dd></div>
            {call ? (
              <>
                <div><dt>Input / output</dt><dd>{`${tokens(call.input_tokens)} / ${tokens(call.output_tokens)}`}</dd></div>
                {(call.cache_read_tokens != null || call.cache_write_tokens != null) && (
                  <div><dt>Cache read / write</dt><dd>{tokens(call.cache_read_tokens ?? 0)} / {tokens(call.cache_write_tokens ?? 0)}</dd></div>
                )}
                <div><dt>Latency</dt><dd>{ms(call.latency_ms)}</dd></div>
                <div><dt>Cost</dt><dd>{call.cost_usd == null ? "unpriced" : usd(call.cost_usd)}</dd></div>
              </>
            ) : (
              <div title="usage, latency and cost are recorded on the snapshot of a captured LLM call (proxy, OTLP)">
                <dt>LLM call</dt>
                <dd data-testid="snapshot-call">{s.rollback_of || s.forked_from ? "none (it restates a snapshot)" : "none recorded"}</dd>
              </div>
            )}
            <div><dt>Stored</dt><dd>{tokens(s.stored_bytes)} bytes</dd></div>
            {s.parent_snapshot_id && <div><dt>Previous</dt><dd><a href={href.snapshot(sessionId, s.parent_snapshot_id)}>{short(s.parent_snapshot_id)}</a></dd></div>}
            {s.rollback_of && <div><dt>Rollback of</dt><dd><a href={href.snapshot(sessionId, s.rollback_of)}>{short(s.rollback_of)}</a></dd></div>}
            {s.forked_from && <div><dt>Forked from</dt><dd><span className="mono">{short(s.forked_from)}</span></dd></div>}
          </dl>

          {revs.length > 1 && (
            <div className="card">
              <label className="inline">
                <span>Revision</span>
                <select
                  value={revision === null ? "" : String(revision)}
                  onChange={(e) => setRevision(e.target.value === "" ? null : Number(e.target.value))}
                  aria-label="revision"
                >
                  <option value="">latest</option>
                  {revs.map((r) => (
                    <option key={r.seq} value={r.seq}>
                      {r.seq === 0 ? "0 (original)" : r.seq} · {when(r.created_at)}
                    </option>
                  ))}
                </select>
              </label>
              <span className="muted small"> This snapshot was enriched: {revs.length} states, the row itself unchanged.</span>
            </div>
          )}

          {bundle && (
            <div className="bundle">
              <section className="card" aria-labelledby="h-messages">
                <h2 id="h-messages">Messages ({bundle.messages.length})</h2>
                <Messages messages={bundle.messages} />
              </section>
              <section className="card" aria-labelledby="h-tools">
                <h2 id="h-tools">Tool calls ({bundle.tool_calls.length})</h2>
                <ToolCalls calls={bundle.tool_calls} />
              </section>
              <section className="card" aria-labelledby="h-files">
                <h2 id="h-files">Files ({bundle.files.length})</h2>
                <Files files={bundle.files} />
              </section>
              <section className="card" aria-labelledby="h-reasoning">
                <h2 id="h-reasoning">Reasoning</h2>
                {bundle.reasoning ? (
                  <details>
                    <summary>show reasoning ({bundle.reasoning.length} characters)</summary>
                    <pre>{bundle.reasoning}</pre>
                  </details>
                ) : (
                  <p className="muted">None.</p>
                )}
              </section>
              <section className="card" aria-labelledby="h-logs">
                <h2 id="h-logs">Log events ({bundle.log_events.length})</h2>
                <LogEvents events={bundle.log_events} />
              </section>
            </div>
          )}

          <Confirm
            open={asking === "rollback"}
            title="Roll back to this snapshot?"
            confirmLabel="Roll back"
            busy={busy}
            onConfirm={act}
            onCancel={() => setAsking(null)}
          >
            <p>
              A new snapshot with the content of <b>{s.label}</b> is written at the head of its task. Nothing is deleted:
              later snapshots stay in the history.
            </p>
            {actionError && <p className="error" role="alert">{actionError}</p>}
          </Confirm>
          <Confirm
            open={asking === "fork"}
            title="Fork a new task from this snapshot?"
            confirmLabel="Fork"
            busy={busy}
            onConfirm={act}
            onCancel={() => setAsking(null)}
          >
            <p>A child task starts with this snapshot's content; this task is unchanged.</p>
            <label htmlFor="fork-name">Name of the new task</label>
            <input id="fork-name" value={forkName} maxLength={200} onChange={(e) => setForkName(e.target.value)} />
            {actionError && <p className="error" role="alert">{actionError}</p>}
          </Confirm>
        </>
      )}
    </section>
  );
}
