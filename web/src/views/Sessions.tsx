import { useEffect, useState } from "react";
import { ApiError, qs } from "../api";
import { ago, tokens, usd } from "../format";
import { useApi, useLoad } from "../hooks";
import { href } from "../router";
import { Sparkline } from "../components/charts/Sparkline";
import type { Page, SearchHit, Session, SessionStats, UsageTotals } from "../types";

const PAGE = 20;

/** One cost figure: the captured calls' (none captured: no cost, rather than $0.00). */
function costOf(st: SessionStats): string {
  const u = st.usage as unknown as UsageTotals;
  if (!st.llm_calls) return "—";
  if (u.cost_usd === null) return "unpriced";
  return usd(u.cost_usd) + (u.unpriced_calls ? ` + ${u.unpriced_calls} unpriced` : "");
}

type SearchState =
  | { kind: "idle" }
  | { kind: "loading" }
  | { kind: "results"; hits: SearchHit[] }
  | { kind: "absent" } // this server has no /v1/search: name filter only
  | { kind: "error"; message: string };

export function SessionsView() {
  const { api } = useApi();
  const [cursors, setCursors] = useState<(string | null)[]>([null]); // a stack: page n's cursor
  const cursor = cursors[cursors.length - 1];
  const page = useLoad(() => api.get<Page<Session>>(`/v1/sessions${qs({ limit: PAGE, cursor, order: "desc" })}`), [api, cursor]);
  const [stats, setStats] = useState<Record<string, SessionStats | "error">>({});
  const [filter, setFilter] = useState("");
  const [query, setQuery] = useState("");
  const [search, setSearch] = useState<SearchState>({ kind: "idle" });
  const [searchAbsent, setSearchAbsent] = useState(false);

  useEffect(() => {
    for (const s of page.data?.data ?? []) {
      api
        .get<SessionStats>(`/v1/sessions/${s.id}/stats`)
        .then((st) => setStats((prev) => ({ ...prev, [s.id]: st })))
        .catch(() => setStats((prev) => ({ ...prev, [s.id]: "error" })));
    }
  }, [api, page.data]);

  async function runSearch(event: React.FormEvent) {
    event.preventDefault();
    const q = query.trim();
    if (!q) {
      setSearch({ kind: "idle" });
      return;
    }
    setSearch({ kind: "loading" });
    try {
      const found = await api.get<{ results: SearchHit[] }>(`/v1/search${qs({ q, limit: 20 })}`);
      setSearch({ kind: "results", hits: found.results });
    } catch (e) {
      const err = e as ApiError;
      if (err.status === 404 || err.status === 405) {
        setSearchAbsent(true);
        setSearch({ kind: "absent" });
        setFilter(q);
      } else if (err.status === 503) {
        setSearch({ kind: "error", message: "Search is unavailable right now (the vector store or embedder is down); try again shortly. The name filter still works." });
      } else {
        setSearch({ kind: "error", message: err.message });
      }
    }
  }

  const sessions = (page.data?.data ?? []).filter((s) => s.name.toLowerCase().includes(filter.trim().toLowerCase()));

  return (
    <section aria-labelledby="sessions-title">
      <div className="toolbar">
        <h1 id="sessions-title">Sessions</h1>
        <label className="inline">
          <span>Filter by name</span>
          <input type="search" value={filter} onChange={(e) => setFilter(e.target.value)} placeholder="name contains…" aria-label="Filter sessions by name" className="filter-box" />
        </label>
        {!searchAbsent && (
          <form role="search" onSubmit={runSearch} className="inline">
            <input type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder="Search snapshot content…" aria-label="Search snapshot content" className="search-box" />
            <button type="submit">Search</button>
          </form>
        )}
        <button type="button" onClick={page.reload}>
          Refresh
        </button>
      </div>

      {search.kind === "absent" && <p className="note">Content search is not available on this server; filtering by name.</p>}
      {search.kind === "error" && <p className="error" role="alert">{search.message}</p>}
      {search.kind === "loading" && <p className="muted">Searching…</p>}
      {search.kind === "results" && (
        <div className="card">
          <h2>Search results ({search.hits.length})</h2>
          {search.hits.length === 0 && <p className="muted">Nothing matched.</p>}
          <ol className="hits">
            {search.hits.map((hit) => (
              <li key={`${hit.snapshot_id}-${hit.snippet.position ?? ""}-${hit.snippet.source}`}>
                <a href={href.snapshot(hit.session_id, hit.snapshot_id)}>{hit.label}</a>{" "}
                <span className="muted">
                  {hit.snippet.source}
                  {hit.snippet.role ? ` · ${hit.snippet.role}` : ""} · score {hit.score.toFixed(2)} · {ago(hit.created_at)}
                </span>
                <blockquote>{hit.snippet.text}</blockquote>
              </li>
            ))}
          </ol>
          <button type="button" className="link" onClick={() => setSearch({ kind: "idle" })}>
            Close results
          </button>
        </div>
      )}

      {page.error && <p className="error" role="alert">{page.error.message}</p>}
      <table className="grid">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Status</th>
            <th scope="col" title="snapshots over the session's life, first to last">Activity</th>
            <th scope="col">Last activity</th>
            <th scope="col" className="num">Snapshots</th>
            <th scope="col" className="num" title="the tokens in the latest snapshot of each task">Context tokens</th>
            <th scope="col" className="num" title="captured LLM calls (proxy, OTLP)">LLM calls</th>
            <th scope="col" className="num" title="the cost of the captured LLM calls">Cost</th>
          </tr>
        </thead>
        <tbody>
          {sessions.map((s) => {
            const st = stats[s.id];
            const ok = st && st !== "error" ? st : null;
            return (
              <tr key={s.id} data-session-id={s.id}>
                <td>
                  <a href={href.session(s.id)}>{s.name}</a>
                  <div className="muted small mono">{s.id}</div>
                </td>
                <td>
                  <span className={`status status-${s.status}`}>{s.status}</span>
                </td>
                <td>{ok ? <Sparkline activity={ok.activity} /> : "…"}</td>
                <td title={ok?.last_activity_at ?? s.updated_at}>{ago(ok?.last_activity_at ?? s.updated_at)}</td>
                <td className="num">{ok ? tokens(ok.total_snapshots) : "…"}</td>
                <td className="num">{ok ? tokens(ok.context_tokens) : "…"}</td>
                <td className="num" title={ok && !ok.llm_calls ? "no LLM calls captured" : undefined}>
                  {ok ? (ok.llm_calls ? tokens(ok.llm_calls) : "none") : "…"}
                </td>
                <td className="num">{ok ? costOf(ok) : "…"}</td>
              </tr>
            );
          })}
          {!page.loading && sessions.length === 0 && (
            <tr>
              <td colSpan={8} className="muted">
                {filter ? "No session on this page matches the filter." : "No sessions yet: create one with the API, an SDK, OTLP or the proxy."}
              </td>
            </tr>
          )}
        </tbody>
      </table>
      <div className="pager">
        <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
          ← Newer
        </button>
        <span className="muted">Page {cursors.length}</span>
        <button
          type="button"
          disabled={!page.data?.next_cursor}
          onClick={() => page.data?.next_cursor && setCursors((c) => [...c, page.data!.next_cursor])}
        >
          Older →
        </button>
      </div>
    </section>
  );
}
