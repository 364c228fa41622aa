import { useMemo } from "react";
import { qs } from "../api";
import { signed, when } from "../format";
import { useApi, useLoad } from "../hooks";
import { go, href } from "../router";
import { Messages, ToolCalls } from "../components/Content";
import { LineDiff } from "../components/LineDiff";
import type { Bundle, Diff, TimelineEntry, ToolCall } from "../types";

/** The state diff of two snapshots: the heart of the page. The API's diff gives messages after
 * the common prefix, tool calls by id and files by hash; the two bundles give the line diff of
 * each modified file and the calls whose state changed under the same id. */
export function DiffView({ sessionId, from, to }: { sessionId: string; from: string; to: string }) {
  const { api } = useApi();
  const timeline = useLoad(
    () => api.get<{ data: TimelineEntry[] }>(`/v1/sessions/${sessionId}/snapshots/timeline`),
    [api, sessionId],
  );
  const ready = Boolean(from && to);
  const diff = useLoad(
    () => (ready ? api.get<Diff>(`/v1/sessions/${sessionId}/diff${qs({ from, to })}`) : Promise.resolve(null)),
    [api, sessionId, from, to],
  );
  const bundles = useLoad(
    () =>
      ready
        ? Promise.all([from, to].map((id) => api.get<Bundle>(`/v1/snapshots/${id}/bundle`)))
        : Promise.resolve(null),
    [api, from, to],
  );

  const snaps = timeline.data?.data ?? [];
  const byId = useMemo(() => new Map(snaps.map((s) => [s.id, s])), [snaps]);
  const [a, b] = bundles.data ?? [null, null];

  const changedCalls = useMemo(() => {
    if (!a || !b) return [] as { before: ToolCall; after: ToolCall }[];
    const old = new Map(a.tool_calls.map((c) => [c.id, c]));
    return b.tool_calls
      .filter((c) => old.has(c.id) && JSON.stringify(old.get(c.id)) !== JSON.stringify(c))
      .map((c) => ({ before: old.get(c.id)!, after: c }));
  }, [a, b]);

  const fileText = (bundle: Bundle | null, path: string) => bundle?.files.find((f) => f.path === path)?.content ?? "";
  const d = diff.data;
  const label = (id: string) => byId.get(id)?.label ?? id;

  const picker = (which: "from" | "to", value: string) => (
    <label className="inline">
      <span>{which === "from" ? "A (before)" : "B (after)"}</span>
      <select
        aria-label={which === "from" ? "snapshot A" : "snapshot B"}
        value={value}
        onChange={(e) =>
          go(href.diff(sessionId, which === "from" ? e.target.value : from, which === "to" ? e.target.value : to))
        }
      >
        <option value="">choose…</option>
        {snaps.map((s) => (
          <option key={s.id} value={s.id}>
            {s.label} · {s.task_name ?? ""} · {when(s.created_at)}
          </option>
        ))}
      </select>
    </label>
  );

  return (
    <section aria-labelledby="diff-title">
      <nav className="crumbs" aria-label="breadcrumb">
        <a href={href.sessions()}>Sessions</a> › <a href={href.session(sessionId)}>Session</a> ›
      </nav>
      <div className="toolbar">
        <h1 id="diff-title">State diff</h1>
        {picker("from", from)}
        <button type="button" onClick={() => go(href.diff(sessionId, to, from))} disabled={!ready} aria-label="swap A and B">
          ⇄ swap
        </button>
        {picker("to", to)}
      </div>
      {(diff.error ?? bundles.error) && (
        <p className="error" role="alert">
          {(diff.error ?? bundles.error)!.message}
        </p>
      )}
      {!ready && <p className="muted">Choose two snapshots of this session.</p>}
      {d && (
        <>
          <div className="diff-summary card" data-testid="diff-summary">
            <p>
              From <a href={href.snapshot(sessionId, d.from)}>{label(d.from)}</a> to{" "}
              <a href={href.snapshot(sessionId, d.to)}>{label(d.to)}</a>
            </p>
            <ul className="chips">
              <li className={d.token_delta > 0 ? "up" : d.token_delta < 0 ? "down" : ""}>
                <b>{signed(d.token_delta)}</b> tokens
              </li>
              <li>{d.messages.common_prefix} messages in common</li>
              <li className="up">+{d.messages.added.length} messages</li>
              <li className="down">−{d.messages.removed.length} messages</li>
              <li>
                tool calls +{d.tool_calls.added.length} −{d.tool_calls.removed.length} ~{changedCalls.length}
              </li>
              <li>
                files +{d.files.added.length} −{d.files.removed.length} ~{d.files.modified.length}
              </li>
            </ul>
          </div>

          <section className="card" aria-labelledby="h-dmsg">
            <h2 id="h-dmsg">Messages after the common prefix ({d.messages.common_prefix} shared)</h2>
            <div className="two">
              <div>
                <h3>Only in A ({d.messages.removed.length})</h3>
                <Messages messages={d.messages.removed} offset={d.messages.common_prefix} mark="removed" />
              </div>
              <div>
                <h3>Only in B ({d.messages.added.length})</h3>
                <Messages messages={d.messages.added} offset={d.messages.common_prefix} mark="added" />
              </div>
            </div>
          </section>

          <section className="card" aria-labelledby="h-dtools">
            <h2 id="h-dtools">Tool calls</h2>
            <div className="two">
              <div>
                <h3>Removed ({d.tool_calls.removed.length})</h3>
                <ToolCalls calls={d.tool_calls.removed} mark="removed" />
              </div>
              <div>
                <h3>Added ({d.tool_calls.added.length})</h3>
                <ToolCalls calls={d.tool_calls.added} mark="added" />
              </div>
            </div>
            {changedCalls.length > 0 && (
              <>
                <h3>Changed under the same id ({changedCalls.length})</h3>
                {changedCalls.map(({ before, after }) => (
                  <div key={after.id} className="two">
                    <ToolCalls calls={[before]} mark="removed" />
                    <ToolCalls calls={[after]} mark="added" />
                  </div>
                ))}
              </>
            )}
          </section>

          <section className="card" aria-labelledby="h-dfiles">
            <h2 id="h-dfiles">Files (by content hash)</h2>
            {d.files.added.length + d.files.removed.length + d.files.modified.length === 0 && (
              <p className="muted">No file changed.</p>
            )}
            {d.files.modified.map((path) => (
              <details key={path} open className="file">
                <summary>
                  <span className="badge mod">modified</span> <span className="mono">{path}</span>
                </summary>
                {bundles.data ? <LineDiff path={path} before={fileText(a, path)} after={fileText(b, path)} /> : <p className="muted">Loading…</p>}
              </details>
            ))}
            {d.files.added.map((path) => (
              <details key={path} className="file">
                <summary>
                  <span className="badge add">added</span> <span className="mono">{path}</span>
                </summary>
                <LineDiff path={path} before="" after={fileText(b, path)} />
              </details>
            ))}
            {d.files.removed.map((path) => (
              <details key={path} className="file">
                <summary>
                  <span className="badge del">removed</span> <span className="mono">{path}</span>
                </summary>
                <LineDiff path={path} before={fileText(a, path)} after="" />
              </details>
            ))}
          </section>
        </>
      )}
    </section>
  );
}
