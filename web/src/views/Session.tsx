import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ago, signed, tokens, usd, when } from "../format";
import { useApi, useLoad } from "../hooks";
import { LiveFeed, type LiveState } from "../live";
import { href, go } from "../router";
import { TaskGraph } from "../components/TaskGraph";
import { LiveBadge } from "../components/LiveBadge";
import { ContextChart } from "../components/charts/ContextChart";
import { UsageChart } from "../components/charts/UsageChart";
import { Waterfall } from "../components/charts/Waterfall";
import { isCall, taskColour } from "../components/charts/common";
import type { Graph, Session, SessionStats, TaskNode, TimelineEntry, UsageTotals } from "../types";

/** The diff picker's default: the last two snapshots of one task (the latest snapshot's, or
 * the most recent task that has two), so that A and B are one line of work. */
export function defaultPair(entries: TimelineEntry[]): [string, string] | null {
  for (let i = entries.length - 1; i >= 1; i--) {
    const same = entries.filter((e) => e.task_id === entries[i].task_id);
    if (same.length >= 2) return [same[same.length - 2].id, same[same.length - 1].id];
  }
  return null;
}

/** The session's numbers, each saying what it counts: the context (what the snapshots hold)
 * and the LLM calls (what was captured of the model's use), never one for the other. */
function Numbers({ st }: { st: SessionStats }) {
  const u = st.usage as unknown as UsageTotals;
  const calls = st.llm_calls;
  const cost =
    u.cost_usd === null ? "unpriced" : `${usd(u.cost_usd)}${u.unpriced_calls ? ` + ${u.unpriced_calls} unpriced` : ""}`;
  return (
    <>
      <dl className="facts" data-testid="session-numbers">
        <div><dt>Snapshots</dt><dd data-testid="snapshot-count">{st.total_snapshots}</dd></div>
        <div title="the tokens in the latest snapshot of each task">
          <dt>Context now</dt><dd data-testid="context-now">{tokens(st.context_tokens)} tokens</dd>
        </div>
        {calls === 0 ? (
          <div><dt>LLM calls</dt><dd data-testid="llm-calls">none captured</dd></div>
        ) : (
          <>
            <div><dt>LLM calls</dt><dd data-testid="llm-calls">{calls}</dd></div>
            <div title="input, cache and output tokens of the captured calls, each call once">
              <dt>Tokens used by calls</dt><dd data-testid="tokens-used">{tokens(st.total_tokens)}</dd>
            </div>
            <div title="the sum over the captured calls (the price table's prices)">
              <dt>Cost</dt><dd data-testid="session-cost">{cost}</dd>
            </div>
          </>
        )}
        <div><dt>Tool calls</dt><dd>{st.total_tool_calls}</dd></div>
        <div><dt>Last activity</dt><dd>{ago(st.last_activity_at)}</dd></div>
      </dl>
      <p className="muted small" data-testid="numbers-note">
        {calls === 0
          ? "No LLM calls captured: these snapshots were written over the API or by tools, which record no model usage, so there are no tokens used or cost to report. Context now is what the snapshots hold: the tokens in each task's latest snapshot."
          : `Tokens used and cost: summed over the ${calls} captured LLM call${calls === 1 ? "" : "s"}, each once (input ${tokens(u.input_tokens)} · cache read ${tokens(u.cache_read_tokens)} · cache write ${tokens(u.cache_write_tokens)} · output ${tokens(u.output_tokens)}). Context now: the tokens in each task's latest snapshot.`}
      </p>
    </>
  );
}

export function SessionView({ sessionId }: { sessionId: string }) {
  const { api, config } = useApi();
  const session = useLoad(() => api.get<Session>(`/v1/sessions/${sessionId}`), [api, sessionId]);
  const graph = useLoad(() => api.get<Graph>(`/v1/sessions/${sessionId}/graph`), [api, sessionId]);
  const timeline = useLoad(
    () => api.get<{ data: TimelineEntry[] }>(`/v1/sessions/${sessionId}/snapshots/timeline`),
    [api, sessionId],
  );
  const stats = useLoad(() => api.get<SessionStats>(`/v1/sessions/${sessionId}/stats`), [api, sessionId]);
  const tree = useLoad(() => api.get<{ data: TaskNode[] }>(`/v1/sessions/${sessionId}/tasks`), [api, sessionId]);
  const [live, setLive] = useState<{ state: LiveState; reason: string }>({ state: "connecting", reason: "" });
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const [task, setTask] = useState<string | null>(null);
  const [from, setFrom] = useState<string | null>(null);
  const [to, setTo] = useState<string | null>(null);
  const feed = useRef<LiveFeed | null>(null);
  const reloadTimer = useRef<number | undefined>(undefined);

  useEffect(() => {
    const reloadSoon = () => {
      window.clearTimeout(reloadTimer.current);
      reloadTimer.current = window.setTimeout(() => {
        graph.reload();
        timeline.reload();
        stats.reload();
        tree.reload();
      }, 150);
    };
    const f = new LiveFeed(
      config.live_url,
      api.key,
      (event) => {
        if (event.session_id !== sessionId) return;
        const id = typeof event.data?.snapshot_id === "string" ? event.data.snapshot_id : null;
        if (event.type === "snapshot.created" && id) setFresh((prev) => new Set(prev).add(id));
        if (event.type === "session.updated") session.reload();
        reloadSoon();
      },
      (state, reason) => setLive({ state, reason }),
    );
    feed.current = f;
    f.follow(sessionId);
    return () => {
      window.clearTimeout(reloadTimer.current);
      f.close();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [api, config.live_url, sessionId]);

  const entries = useMemo(() => timeline.data?.data ?? [], [timeline.data]);
  const taskOrder = useMemo(() => (graph.data?.nodes ?? []).map((n) => n.id), [graph.data]);
  // one colour per task in every chart, by the order of the task tree
  const colourOf = useCallback(
    (taskId: string) => {
      const i = taskOrder.indexOf(taskId);
      return taskColour(i < 0 ? taskOrder.length : i);
    },
    [taskOrder],
  );

  // defaults for the diff picker: the last two snapshots of one task
  useEffect(() => {
    const pair = defaultPair(entries);
    if (pair && !from && !to) {
      setFrom(pair[0]);
      setTo(pair[1]);
    }
  }, [entries, from, to]);

  if (session.error) {
    // a session that is not there (or not this account's): that alone, not an empty session
    return (
      <section aria-labelledby="session-title">
        <nav className="crumbs" aria-label="breadcrumb">
          <a href={href.sessions()}>Sessions</a> ›
        </nav>
        <h1 id="session-title">{session.error.status === 404 ? "Session not found" : "The session could not be loaded"}</h1>
        <p className="error" role="alert">
          {session.error.status === 404
            ? `No session ${sessionId} in this account: it was never made, was purged, or belongs to another account.`
            : session.error.message}
        </p>
        <p>
          <a href={href.sessions()}>Back to the sessions</a>
        </p>
      </section>
    );
  }

  const error = graph.error ?? timeline.error;
  const st = stats.data;
  return (
    <section aria-labelledby="session-title">
      <nav className="crumbs" aria-label="breadcrumb">
        <a href={href.sessions()}>Sessions</a> ›
      </nav>
      <div className="toolbar">
        <h1 id="session-title">{session.data?.name ?? sessionId}</h1>
        {session.data && <span className={`status status-${session.data.status}`}>{session.data.status}</span>}
        <LiveBadge state={live.state} reason={live.reason} onRetry={() => feed.current?.retry()} />
        <span className="spacer" />
        <button
          type="button"
          onClick={() => {
            graph.reload();
            timeline.reload();
            stats.reload();
            tree.reload();
          }}
        >
          Refresh
        </button>
      </div>
      {error && <p className="error" role="alert">{error.message}</p>}
      {st && <Numbers st={st} />}

      <div className="split">
        <div className="card">
          <h2>Task tree</h2>
          {graph.data && graph.data.nodes.length > 0 ? (
            <TaskGraph graph={graph.data} selected={task} onSelect={setTask} />
          ) : graph.data ? (
            <p className="muted">No tasks yet.</p>
          ) : (
            <p className="muted">Loading…</p>
          )}
          <p className="legend small">
            <span className="status status-pending">pending</span> <span className="status status-active">active</span>{" "}
            <span className="status status-completed">completed</span> <span className="status status-failed">failed</span>
            {task && (
              <>
                {" · "}showing one task{" "}
                <button type="button" className="link" onClick={() => setTask(null)}>
                  show all
                </button>
              </>
            )}
          </p>
        </div>

        <div className="card">
          <div className="toolbar">
            <h2>Compare two snapshots</h2>
            <span className="spacer" />
            <button
              type="button"
              className="primary"
              disabled={!from || !to || from === to}
              onClick={() => from && to && go(href.diff(sessionId, from, to))}
            >
              Diff selected
            </button>
          </div>
          <dl className="picked">
            <dt>A</dt>
            <dd>{entries.find((e) => e.id === from)?.label ?? "—"}</dd>
            <dt>B</dt>
            <dd>{entries.find((e) => e.id === to)?.label ?? "—"}</dd>
          </dl>
          <p className="muted small">
            Pick <b>A</b> (before) and <b>B</b> (after) in the timeline below, then diff: messages after the common
            prefix, tool calls by id, files by hash with a line diff, and the token delta.
          </p>
        </div>
      </div>

      {entries.length > 0 && (
        <section className="charts" aria-label="charts">
          <ContextChart sessionId={sessionId} entries={entries} taskOrder={taskOrder} colourOf={colourOf} />
          <UsageChart sessionId={sessionId} entries={entries} />
          {tree.data && <Waterfall sessionId={sessionId} tree={tree.data.data} entries={entries} colourOf={colourOf} />}
        </section>
      )}

      <div className="card">
        <h2>Timeline</h2>
        <table className="grid timeline" aria-label="timeline">
          <thead>
            <tr>
              <th scope="col">A</th>
              <th scope="col">B</th>
              <th scope="col">When</th>
              <th scope="col">Task</th>
              <th scope="col">Snapshot</th>
              <th scope="col">Source</th>
              <th scope="col" className="num" title="the tokens in the snapshot: its whole context">Context tokens</th>
              <th scope="col" className="num">Δ tokens</th>
              <th scope="col" className="num" title="the LLM call this snapshot records, if any: its tokens and cost">LLM call</th>
            </tr>
          </thead>
          <tbody>
            {entries
              .filter((e) => !task || e.task_id === task)
              .map((e) => (
                <tr key={e.id} data-snapshot-id={e.id} className={fresh.has(e.id) ? "fresh" : undefined}>
                  <td>
                    <input type="radio" name="diff-from" aria-label={`A: ${e.label}`} checked={from === e.id} onChange={() => setFrom(e.id)} />
                  </td>
                  <td>
                    <input type="radio" name="diff-to" aria-label={`B: ${e.label}`} checked={to === e.id} onChange={() => setTo(e.id)} />
                  </td>
                  <td title={when(e.created_at)}>{ago(e.created_at)}</td>
                  <td>{e.task_name ?? e.task_id}</td>
                  <td>
                    <a href={href.snapshot(sessionId, e.id)}>{e.label}</a>
                    {fresh.has(e.id) && <span className="badge new">new</span>}
                    {e.rollback_of && <span className="badge lineage" title={`rollback of ${e.rollback_of}`}>rollback</span>}
                    {e.forked_from && <span className="badge lineage" title={`fork of ${e.forked_from}`}>fork</span>}
                    {e.enriched && <span className="badge lineage">enriched</span>}
                  </td>
                  <td>{e.source}</td>
                  <td className="num">{tokens(e.token_total)}</td>
                  <td className={`num ${e.token_delta > 0 ? "up" : e.token_delta < 0 ? "down" : ""}`}>{signed(e.token_delta)}</td>
                  <td className="num" title={isCall(e) ? undefined : "no LLM call recorded on this snapshot (a rollback or fork restates one, it makes none)"}>
                    {e.usage && isCall(e)
                      ? `${tokens(e.usage.input_tokens + e.usage.output_tokens + (e.usage.cache_read_tokens ?? 0) + (e.usage.cache_write_tokens ?? 0))} tokens · ${e.usage.cost_usd == null ? "unpriced" : usd(e.usage.cost_usd)}`
                      : "—"}
                  </td>
                </tr>
              ))}
            {!timeline.loading && entries.length === 0 && (
              <tr>
                <td colSpan={9} className="muted">
                  No snapshots yet. With the live feed on, they appear here as they are made.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}
