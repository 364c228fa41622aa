// A run's timing, as Phoenix and Langfuse draw a trace: each task a bar from its start to its
// last snapshot, each LLM call under it a bar of its latency ending when its answer was
// captured, on one time axis from the run's start; the slowest call marked.
import { AxisTop } from "@visx/axis";
import { scaleLinear } from "@visx/scale";
import { useMemo } from "react";
import { elapsed, ms, tokens, usd, when } from "../../format";
import { go, href } from "../../router";
import type { TaskNode, TimelineEntry } from "../../types";
import { AXIS_LABEL, ChartFrame, capturedAt, isCall, tipProps, useTip, type Tip } from "./common";

const LABEL_W = 250;
const DURATION_W = 84;
const AXIS_H = 26;
/** Rows drawn at most (the rest are counted in a note below). */
const MAX_ROWS = 400;

interface TaskRow {
  kind: "task";
  id: string;
  name: string;
  depth: number;
  colour: string;
  start: number;
  end: number;
  ticks: TimelineEntry[];
}

interface CallRow {
  kind: "call";
  id: string;
  entry: TimelineEntry;
  depth: number;
  colour: string;
  start: number;
  end: number;
  latency: number | null;
}

type Row = TaskRow | CallRow;

/** The rows, in the task tree's order: each task, then its LLM calls in the order captured.
 * A task's bar runs from its start (its creation, or its first snapshot or call when that is
 * earlier, as for tasks made from OTLP spans after the fact) to its last snapshot, and covers
 * its subtasks' bars as a trace's parent span covers its children. */
export function waterfallRows(tree: TaskNode[], entries: TimelineEntry[], colourOf: (taskId: string) => string): Row[] {
  const byTask = new Map<string, TimelineEntry[]>();
  for (const e of entries) {
    if (!byTask.has(e.task_id)) byTask.set(e.task_id, []);
    byTask.get(e.task_id)!.push(e);
  }
  const rows: Row[] = [];
  const visit = (node: TaskNode, depth: number): { start: number; end: number | null } => {
    const colour = colourOf(node.id);
    const snaps = (byTask.get(node.id) ?? []).sort((a, b) => capturedAt(a) - capturedAt(b));
    const calls: CallRow[] = snaps.filter(isCall).map((e) => {
      const end = capturedAt(e);
      const latency = e.usage?.latency_ms ?? null;
      return { kind: "call", id: e.id, entry: e, depth: depth + 1, colour, start: end - (latency ?? 0), end, latency };
    });
    const row: TaskRow = { kind: "task", id: node.id, name: node.name, depth, colour, start: 0, end: 0, ticks: snaps.filter((e) => !isCall(e)) };
    rows.push(row, ...calls);
    const children = node.children.map((child) => visit(child, depth + 1));
    const created = new Date(node.created_at).getTime();
    const start = Math.min(created, ...calls.map((c) => c.start), ...snaps.map(capturedAt), ...children.map((c) => c.start));
    const ends = [...snaps.map(capturedAt), ...children.flatMap((c) => (c.end === null ? [] : [c.end]))];
    row.start = start;
    row.end = ends.length ? Math.max(...ends) : Math.max(start, created, new Date(node.updated_at).getTime());
    return { start, end: ends.length ? row.end : null };
  };
  for (const node of tree) visit(node, 0);
  return rows;
}

export function Waterfall({
  sessionId,
  tree,
  entries,
  colourOf,
}: {
  sessionId: string;
  tree: TaskNode[];
  entries: TimelineEntry[];
  colourOf: (taskId: string) => string;
}) {
  const tip = useTip();
  const rows = useMemo(() => waterfallRows(tree, entries, colourOf), [tree, entries, colourOf]);
  const calls = rows.filter((r): r is CallRow => r.kind === "call");
  const slowest = calls.reduce<CallRow | null>((a, c) => (c.latency !== null && (a === null || c.latency > (a.latency ?? -1)) ? c : a), null);
  const t0 = Math.min(...rows.map((r) => r.start));
  const t1 = Math.max(...rows.map((r) => r.end));
  const span = Math.max(1, t1 - t0);
  const shown = rows.slice(0, MAX_ROWS);

  if (rows.length === 0) return null;

  const taskTip = (r: TaskRow): Tip => ({
    title: r.name,
    rows: [
      ["starts at", elapsed(r.start - t0)],
      ["lasts", ms(r.end - r.start)],
      ["snapshots", String(entries.filter((e) => e.task_id === r.id).length)],
      ["LLM calls", String(calls.filter((c) => c.entry.task_id === r.id).length)],
    ],
  });
  const callTip = (r: CallRow): Tip => ({
    title: r.entry.label,
    rows: [
      ["task", r.entry.task_name ?? r.entry.task_id],
      ["model", r.entry.model ?? "—"],
      ["starts at", elapsed(r.start - t0)],
      ["latency", r.latency === null ? "unknown" : ms(r.latency)],
      ["answer captured", when(r.entry.captured_at ?? r.entry.created_at)],
      ["tokens in / out", `${tokens(r.entry.usage?.input_tokens)} / ${tokens(r.entry.usage?.output_tokens)}`],
      ["cost", r.entry.usage?.cost_usd == null ? "unpriced" : usd(r.entry.usage.cost_usd)],
    ],
  });

  return (
    <ChartFrame
      id="chart-timing"
      testId="waterfall"
      title="Timing"
      caption={
        <>
          The run from its first task's start ({when(new Date(t0).toISOString())}) to its last snapshot:{" "}
          {ms(span)}. Tasks, and under each its LLM calls as bars of their latency ending when the answer was captured;
          tick marks are snapshots that are not LLM calls.
          {slowest && (
            <>
              {" "}
              Slowest call: <b>{slowest.entry.label}</b>, {ms(slowest.latency)}.
            </>
          )}
        </>
      }
    >
      {(width) => {
        const trackW = Math.max(60, width - LABEL_W - DURATION_W - 16);
        const x = scaleLinear({ domain: [0, span], range: [0, trackW] });
        const left = (t: number) => x(t - t0) ?? 0;
        return (
          <>
            <div className="wf-scroll">
              <div className="waterfall" role="table" aria-label={`timing of ${rows.length} tasks and LLM calls`}>
                <div role="row" className="wf-row wf-head">
                  <div role="columnheader" className="wf-label">Task / LLM call</div>
                  <div role="columnheader" className="wf-track">
                    <svg width={trackW} height={AXIS_H} aria-hidden="true" className="wf-axis">
                      <AxisTop
                        top={AXIS_H - 1}
                        scale={x}
                        numTicks={Math.max(2, Math.floor(trackW / 90))}
                        tickFormat={(v) => elapsed(Number(v))}
                        tickLabelProps={{ ...AXIS_LABEL, textAnchor: "middle" }}
                        stroke="#d9dee5"
                        tickStroke="#d9dee5"
                      />
                    </svg>
                  </div>
                  <div role="columnheader" className="wf-duration num">Duration</div>
                </div>
                {shown.map((r) => {
                  const isSlowest = r.kind === "call" && slowest !== null && r.id === slowest.id;
                  const barLeft = left(r.start);
                  const barWidth = Math.max(2, left(r.end) - barLeft);
                  const content = r.kind === "task" ? taskTip(r) : callTip(r);
                  const open = r.kind === "call" ? () => go(href.snapshot(sessionId, r.id)) : undefined;
                  return (
                    <div
                      key={`${r.kind}-${r.id}`}
                      role="row"
                      className={`wf-row wf-${r.kind}${isSlowest ? " slowest" : ""}`}
                      data-row-task={r.kind === "task" ? r.id : undefined}
                      data-snapshot-id={r.kind === "call" ? r.id : undefined}
                      data-testid={isSlowest ? "slowest-call" : undefined}
                    >
                      <div role="cell" className="wf-label" style={{ paddingLeft: `${r.depth * 14}px` }} title={r.kind === "task" ? r.name : r.entry.label}>
                        {r.kind === "task" ? <b>{r.name}</b> : r.entry.label}
                        {isSlowest && <span className="badge slow">slowest</span>}
                      </div>
                      <div role="cell" className="wf-track" style={{ width: `${trackW}px` }}>
                        <div
                          className={`wf-bar wf-bar-${r.kind}${r.kind === "call" && r.latency === null ? " unknown" : ""}`}
                          style={{ left: `${barLeft}px`, width: `${barWidth}px`, ...(isSlowest ? {} : { background: r.colour }) }}
                          tabIndex={0}
                          role={open ? "link" : undefined}
                          aria-label={`${r.kind === "task" ? r.name : r.entry.label}: ${ms(r.end - r.start)}`}
                          onClick={open}
                          onKeyDown={(k) => open && k.key === "Enter" && open()}
                          {...tipProps(tip, content)}
                        />
                        {r.kind === "task" &&
                          r.ticks.map((e) => (
                            <span
                              key={e.id}
                              className="wf-tick"
                              style={{ left: `${left(capturedAt(e))}px` }}
                              title={`${e.label} · ${when(e.captured_at ?? e.created_at)}`}
                              data-snapshot-id={e.id}
                            />
                          ))}
                      </div>
                      <div role="cell" className="wf-duration num">
                        {r.kind === "call" && r.latency === null ? "—" : ms(r.end - r.start)}
                      </div>
                    </div>
                  );
                })}
              </div>
              {rows.length > shown.length && (
                <p className="muted small">{rows.length - shown.length} more rows not drawn (the timeline lists every snapshot).</p>
              )}
            </div>
            {tip.element}
          </>
        );
      }}
    </ChartFrame>
  );
}
