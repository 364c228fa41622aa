import { useEffect, useMemo, useRef, useState } from "react";
import { ago, signed, tokens, usd, when } from "../format";
import { useApi, useLoad } from "../hooks";
import { LiveFeed, type LiveState } from "../live";
import { href, go } from "../router";
import { TaskGraph } from "../components/TaskGraph";
import { LiveBadge } from "../components/LiveBadge";
import type { Graph, Session, SessionStats, TimelineEntry } from "../types";

export function SessionView({ sessionId }: { sessionId: string }) {
  const { api, config } = useApi();
  const session = useLoad(() => api.get<Session>(`/v1/sessions/${sessionId}`), [api, sessionId]);
  const graph = useLoad(() => api.get<Graph>(`/v1/sessions/${sessionId}/graph`), [api, sessionId]);
  const timeline = useLoad(
    () => api.get<{ data: TimelineEntry[] }>(`/v1/sessions/${sessionId}/snapshots/timeline`),
    [api, sessionId],
  );
  const stats = useLoad(() => api.get<SessionStats>(`/v1/sessions/${sessionId}/stats`), [api, sessionId]);
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

  const entries = timeline.data?.data ?? [];
  const withCumulative = useMemo(() => {
    let cost = 0;
    return entries.map((e) => {
      cost += e.usage?.cost_usd ?? 0;
      return { ...e, cumulative_cost: cost };
    });
  }, [entries]);

  // defaults for the diff picker: the last two snapshots
  useEffect(() => {
    if (entries.length >= 2 && !from && !to) {
      setFrom(entries[entries.length - 2].id);
      setTo(entries[entries.length - 1].id);
    }
  }, [entries, from, to]);

  const error = session.error ?? graph.error ?? timeline.error;
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
          }}
        >
          Refresh
        </button>
      </div>
      {error && <p className="error" role="alert">{error.message}</p>}
      {st && (
        <dl className="facts">
          <div><dt>Snapshots</dt><dd data-testid="snapshot-count">{st.total_snapshots}</dd></div>
          <div><dt>LLM calls</dt><dd>{st.llm_calls}</dd></div>
          <div><dt>Tokens used</dt><dd>{tokens(st.total_tokens)}</dd></div>
          <div><dt>Context now</dt><dd>{tokens(st.context_tokens)}</dd></div>
          <div><dt>Cost</dt><dd>{usd(st.usage.cost_usd as number | null)}</dd></div>
          <div><dt>Tool calls</dt><dd>{st.total_tool_calls}</dd></div>
          <div><dt>Last activity</dt><dd>{ago(st.last_activity_at)}</dd></div>
        </dl>
      )}

      <div className="split">
        <div className="card">
          <h2>Task tree</h2>
          {graph.data && graph.data.nodes.length > 0 ? (
            <TaskGraph graph={graph.data} selected={task} onSelect={setTask} />
          ) : (
            <p className="muted">No tasks yet.</p>
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
              <th scope="col" className="num">Tokens</th>
              <th scope="col" className="num">Δ tokens</th>
              <th scope="col" className="num">Δ cost</th>
              <th scope="col" className="num">Cost so far</th>
            </tr>
          </thead>
          <tbody>
            {withCumulative
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
                  <td className="num">{e.usage?.cost_usd != null ? `+${usd(e.usage.cost_usd)}` : "—"}</td>
                  <td className="num">{usd(e.cumulative_cost)}</td>
                </tr>
              ))}
            {!timeline.loading && entries.length === 0 && (
              <tr>
                <td colSpan={10} className="muted">
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
