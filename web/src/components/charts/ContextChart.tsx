// A session's context over time: each task's snapshots as a line of their token totals,
// rollbacks and forks marked (a dashed link from the snapshot they restore), the model's
// context window as a limit line where the price table knows it.
import { AxisBottom, AxisLeft } from "@visx/axis";
import { Group } from "@visx/group";
import { scaleLinear } from "@visx/scale";
import { Line, LinePath } from "@visx/shape";
import { useMemo, useState } from "react";
import { elapsed, signed, tokens, when } from "../../format";
import { go, href } from "../../router";
import type { TimelineEntry } from "../../types";
import { AXIS_LABEL, ChartFrame, capturedAt, tipProps, useTip } from "./common";

const HEIGHT = 280;
const M = { top: 14, right: 24, bottom: 30, left: 64 };
/** Below this share of the limit the axis keeps to the data (the limit is then noted). */
const TO_SCALE_FROM = 0.1;

export function ContextChart({
  sessionId,
  entries,
  taskOrder,
  colourOf,
}: {
  sessionId: string;
  entries: TimelineEntry[];
  taskOrder: string[];
  colourOf: (taskId: string) => string;
}) {
  const tip = useTip();
  const byId = useMemo(() => new Map(entries.map((e) => [e.id, e])), [entries]);
  const tasks = useMemo(() => {
    const seen = new Map<string, { id: string; name: string; points: TimelineEntry[] }>();
    for (const e of entries) {
      if (!seen.has(e.task_id)) seen.set(e.task_id, { id: e.task_id, name: e.task_name ?? e.task_id, points: [] });
      seen.get(e.task_id)!.points.push(e);
    }
    const rank = (id: string) => {
      const i = taskOrder.indexOf(id);
      return i < 0 ? taskOrder.length : i;
    };
    return [...seen.values()]
      .sort((a, b) => rank(a.id) - rank(b.id))
      .map((t) => ({ ...t, points: [...t.points].sort((a, b) => capturedAt(a) - capturedAt(b)) }));
  }, [entries, taskOrder]);
  const t0 = Math.min(...entries.map(capturedAt));
  const span = Math.max(...entries.map(capturedAt)) - t0;
  const rollbacks = entries.some((e) => e.rollback_of);
  const forks = entries.some((e) => e.forked_from);

  const peak = Math.max(0, ...entries.map((e) => e.token_total));
  const limits = useMemo(() => {
    const found = new Map<number, string>();
    for (const e of entries) if (e.context_window && !found.has(e.context_window)) found.set(e.context_window, e.model ?? "");
    return [...found.entries()].map(([limit, model]) => ({ limit, model })).sort((a, b) => a.limit - b.limit);
  }, [entries]);
  const nearest = limits[0]?.limit ?? null;
  const [toScale, setToScale] = useState<boolean | null>(null);
  const scaled = nearest !== null && (toScale ?? peak >= nearest * TO_SCALE_FROM);

  const legend = (
    <>
      {tasks.map((t) => (
        <span key={t.id} className="key">
          <svg width="18" height="10" aria-hidden="true">
            <line x1="0" y1="5" x2="18" y2="5" stroke={colourOf(t.id)} strokeWidth="2" />
          </svg>
          {t.name}
        </span>
      ))}
      {rollbacks && (
        <span className="key">
          <svg width="12" height="12" aria-hidden="true">
            <rect x="2" y="2" width="8" height="8" className="mark-rollback" />
          </svg>
          rollback (dashed: from the snapshot it restores)
        </span>
      )}
      {forks && (
        <span className="key">
          <svg width="12" height="12" aria-hidden="true">
            <path d="M6 1 L11 6 L6 11 L1 6 Z" className="mark-fork" />
          </svg>
          fork (dashed: from the snapshot it starts with)
        </span>
      )}
      {limits.length > 0 ? (
        <span className="key" data-testid="context-limit-note">
          <svg width="18" height="10" aria-hidden="true">
            <line x1="0" y1="5" x2="18" y2="5" className="limit-line" />
          </svg>
          {limits.map((l) => `${l.model || "model"}: ${tokens(l.limit)}`).join(", ")} tokens
          {nearest !== null && ` · peak ${tokens(peak)} is ${((peak / nearest) * 100).toPrecision(2)}% of it`}
          <label className="inline">
            <input type="checkbox" checked={scaled} onChange={(e) => setToScale(e.target.checked)} />
            draw the limit to scale
          </label>
        </span>
      ) : (
        <span className="key muted">context limit unknown (no model in the price table)</span>
      )}
    </>
  );

  return (
    <ChartFrame
      id="chart-context"
      testId="context-chart"
      title="Context over time"
      caption={`Tokens in each snapshot (its whole context: messages, files, reasoning), by task, from the first snapshot (${when(new Date(t0).toISOString())}). Click a point to open the snapshot.`}
      legend={legend}
      height={HEIGHT}
    >
      {(width) => {
        const innerW = Math.max(10, width - M.left - M.right);
        const innerH = HEIGHT - M.top - M.bottom;
        const pad = Math.max(span * 0.03, 1);
        const x = scaleLinear({ domain: [-pad, span + pad], range: [0, innerW] });
        const top = Math.max(1, scaled && nearest !== null ? Math.max(peak, limits[limits.length - 1].limit) : peak);
        const y = scaleLinear({ domain: [0, top * 1.08], range: [innerH, 0], nice: true });
        const px = (e: TimelineEntry) => x(capturedAt(e) - t0) ?? 0;
        const py = (e: TimelineEntry) => y(e.token_total) ?? 0;
        const content = (e: TimelineEntry) => {
          const from = e.rollback_of ?? e.forked_from;
          const source = from ? byId.get(from) : undefined;
          return {
            title: e.label,
            rows: [
              ["task", e.task_name ?? e.task_id],
              ["tokens", tokens(e.token_total)],
              ["Δ tokens", signed(e.token_delta)],
              ["at", `${elapsed(capturedAt(e) - t0)} (${when(new Date(capturedAt(e)).toISOString())})`],
              ...(e.model ? ([["model", e.model]] as [string, string][]) : []),
              ...(e.rollback_of ? ([["rollback of", source?.label ?? e.rollback_of]] as [string, string][]) : []),
              ...(e.forked_from ? ([["fork of", source?.label ?? e.forked_from]] as [string, string][]) : []),
            ] as [string, string][],
          };
        };
        return (
          <>
            <svg width={width} height={HEIGHT} role="img" aria-label={`Context over time: ${entries.length} snapshots in ${tasks.length} tasks, peak ${tokens(peak)} tokens`}>
              <Group left={M.left} top={M.top}>
                <AxisLeft scale={y} numTicks={5} tickFormat={(v) => tokens(Number(v))} tickLabelProps={{ ...AXIS_LABEL, textAnchor: "end", dx: -4, dy: "0.33em" }} stroke="#d9dee5" tickStroke="#d9dee5" />
                <AxisBottom top={innerH} scale={x} numTicks={Math.max(2, Math.floor(innerW / 110))} tickFormat={(v) => elapsed(Number(v))} tickLabelProps={{ ...AXIS_LABEL, textAnchor: "middle" }} stroke="#d9dee5" tickStroke="#d9dee5" />
                {scaled &&
                  limits.map((l) => (
                    <g key={l.limit} data-testid="context-limit">
                      <Line from={{ x: 0, y: y(l.limit) }} to={{ x: innerW, y: y(l.limit) }} className="limit-line" />
                      <text x={innerW - 4} y={(y(l.limit) ?? 0) - 4} textAnchor="end" className="chart-note">
                        {`${l.model || "model"} limit ${tokens(l.limit)}`}
                      </text>
                    </g>
                  ))}
                {tasks.map((t) => (
                  <LinePath
                    key={t.id}
                    data={t.points}
                    x={px}
                    y={py}
                    stroke={colourOf(t.id)}
                    strokeWidth={2}
                    className="task-line"
                    data-line-task={t.id}
                  />
                ))}
                {entries
                  .filter((e) => e.rollback_of ?? e.forked_from)
                  .map((e) => {
                    const source = byId.get((e.rollback_of ?? e.forked_from)!);
                    if (!source) return null;
                    return (
                      <Line
                        key={`link-${e.id}`}
                        from={{ x: px(source), y: py(source) }}
                        to={{ x: px(e), y: py(e) }}
                        className={e.rollback_of ? "link-rollback" : "link-fork"}
                      />
                    );
                  })}
                {entries.map((e) => {
                  const cx = px(e);
                  const cy = py(e);
                  const kind = e.rollback_of ? "rollback" : e.forked_from ? "fork" : "snapshot";
                  const common = {
                    "data-snapshot-id": e.id,
                    className: `point point-${kind}`,
                    tabIndex: 0,
                    role: "link",
                    "aria-label": `${kind} ${e.label}, ${e.task_name ?? ""}, ${tokens(e.token_total)} tokens`,
                    onClick: () => go(href.snapshot(sessionId, e.id)),
                    onKeyDown: (k: React.KeyboardEvent) => k.key === "Enter" && go(href.snapshot(sessionId, e.id)),
                    ...tipProps(tip, content(e)),
                  };
                  if (kind === "rollback")
                    return <rect key={e.id} x={cx - 5} y={cy - 5} width={10} height={10} {...common} />;
                  if (kind === "fork")
                    return <path key={e.id} d={`M${cx} ${cy - 7} L${cx + 7} ${cy} L${cx} ${cy + 7} L${cx - 7} ${cy} Z`} {...common} />;
                  return <circle key={e.id} cx={cx} cy={cy} r={4} fill={colourOf(e.task_id)} {...common} />;
                })}
              </Group>
            </svg>
            {tip.element}
          </>
        );
      }}
    </ChartFrame>
  );
}
