// Usage over time: each captured LLM call in order, its input, cache and output tokens stacked;
// below, its cost and the cumulative cost (the same sum as the session's "Cost").
import { AxisBottom, AxisLeft, AxisRight } from "@visx/axis";
import { Group } from "@visx/group";
import { scaleBand, scaleLinear } from "@visx/scale";
import { Bar, LinePath } from "@visx/shape";
import { useMemo } from "react";
import { ms, tokens, usd, usdTicks, when } from "../../format";
import { go, href } from "../../router";
import type { TimelineEntry } from "../../types";
import { AXIS_LABEL, ChartFrame, capturedAt, isCall, tipProps, useTip } from "./common";

const HEIGHT = 330;
const M = { top: 10, right: 64, bottom: 26, left: 64 };
const GAP = 26; // between the token and the cost panels
const MAX_BAR = 56;

export const KINDS = [
  { key: "input_tokens", label: "input", className: "k-input" },
  { key: "cache_read_tokens", label: "cache read", className: "k-cache-read" },
  { key: "cache_write_tokens", label: "cache write", className: "k-cache-write" },
  { key: "output_tokens", label: "output", className: "k-output" },
] as const;

export interface Call {
  entry: TimelineEntry;
  n: number;
  parts: number[];
  total: number;
  cost: number | null;
  cumulative: number;
}

/** The session's LLM calls (snapshots that record one), in the order they were captured. */
export function llmCalls(entries: TimelineEntry[]): Call[] {
  let cumulative = 0;
  return entries
    .filter(isCall)
    .sort((a, b) => capturedAt(a) - capturedAt(b))
    .map((entry, i) => {
      const u = entry.usage!;
      const parts = KINDS.map((k) => u[k.key] ?? 0);
      cumulative += u.cost_usd ?? 0;
      return { entry, n: i + 1, parts, total: parts.reduce((a, b) => a + b, 0), cost: u.cost_usd ?? null, cumulative };
    });
}

export function UsageChart({ sessionId, entries }: { sessionId: string; entries: TimelineEntry[] }) {
  const tip = useTip();
  const calls = useMemo(() => llmCalls(entries), [entries]);
  const unpriced = calls.filter((c) => c.cost === null).length;
  const total = calls.length ? calls[calls.length - 1].cumulative : 0;

  if (calls.length === 0) {
    return (
      <figure className="chart card" aria-labelledby="chart-usage-title" data-testid="usage-chart">
        <h2 id="chart-usage-title">Usage over time</h2>
        <p className="muted" data-testid="no-llm-calls">
          No LLM calls captured in this session: its snapshots were written over the API or by tools, which record no
          model usage. Calls made through the proxy or sent as OTLP spans show their tokens and cost here.
        </p>
      </figure>
    );
  }

  const legend = (
    <>
      {KINDS.map((k) => (
        <span key={k.key} className="key">
          <svg width="10" height="10" aria-hidden="true">
            <rect width="10" height="10" className={k.className} />
          </svg>
          {k.label} tokens
        </span>
      ))}
      <span className="key">
        <svg width="10" height="10" aria-hidden="true">
          <rect width="10" height="10" className="k-cost" />
        </svg>
        cost of the call
      </span>
      <span className="key">
        <svg width="18" height="10" aria-hidden="true">
          <line x1="0" y1="5" x2="18" y2="5" className="cumulative-line" />
        </svg>
        cumulative cost <b data-testid="usage-total">{usd(total)}</b>
        {unpriced > 0 && ` + ${unpriced} unpriced call${unpriced === 1 ? "" : "s"} (model not in the price table)`}
      </span>
    </>
  );

  return (
    <ChartFrame
      id="chart-usage"
      testId="usage-chart"
      title="Usage over time"
      caption={`${calls.length} LLM call${calls.length === 1 ? "" : "s"} in the order captured: tokens by kind above, cost below (left axis per call, right axis cumulative).`}
      legend={legend}
      height={HEIGHT}
    >
      {(width) => {
        const innerW = Math.max(10, width - M.left - M.right);
        const panel = (HEIGHT - M.top - M.bottom - GAP) / 2;
        const x = scaleBand({ domain: calls.map((c) => c.n), range: [0, innerW], padding: 0.25 });
        const yTok = scaleLinear({ domain: [0, Math.max(1, ...calls.map((c) => c.total))], range: [panel, 0], nice: true });
        const maxCost = Math.max(0, ...calls.map((c) => c.cost ?? 0));
        const yCost = scaleLinear({ domain: [0, maxCost || 0.01], range: [panel, 0], nice: true });
        const yCum = scaleLinear({ domain: [0, total || 0.01], range: [panel, 0], nice: true });
        const bw = Math.min(MAX_BAR, x.bandwidth());
        const at = (n: number) => (x(n) ?? 0) + (x.bandwidth() - bw) / 2;
        const costTick = usdTicks(yCost.domain()[1]);
        const cumTick = usdTicks(yCum.domain()[1]);
        const every = Math.max(1, Math.ceil(calls.length / Math.max(1, Math.floor(innerW / 40))));
        const content = (c: Call) => ({
          title: `call ${c.n}: ${c.entry.label}`,
          rows: [
            ["task", c.entry.task_name ?? c.entry.task_id],
            ["model", c.entry.model ?? "—"],
            ["captured", when(c.entry.captured_at ?? c.entry.created_at)],
            ...KINDS.map((k, i) => [k.label, tokens(c.parts[i])] as [string, string]),
            ["latency", ms(c.entry.usage?.latency_ms)],
            ["cost", c.cost === null ? "unpriced" : usd(c.cost)],
            ["cost so far", usd(c.cumulative)],
          ] as [string, string][],
        });
        return (
          <>
            <svg width={width} height={HEIGHT} role="img" aria-label={`Usage of ${calls.length} LLM calls, cumulative cost ${usd(total)}`}>
              <Group left={M.left} top={M.top}>
                <AxisLeft scale={yTok} numTicks={4} tickFormat={(v) => tokens(Number(v))} tickLabelProps={{ ...AXIS_LABEL, textAnchor: "end", dx: -4, dy: "0.33em" }} stroke="#d9dee5" tickStroke="#d9dee5" label="tokens" labelProps={{ ...AXIS_LABEL, textAnchor: "middle" }} labelOffset={40} />
                {calls.map((c) => {
                  let base = 0;
                  const left = at(c.n);
                  return (
                    <g
                      key={c.entry.id}
                      data-snapshot-id={c.entry.id}
                      className="call-bar"
                      tabIndex={0}
                      role="link"
                      aria-label={`call ${c.n} ${c.entry.label}: ${tokens(c.total)} tokens, ${c.cost === null ? "unpriced" : usd(c.cost)}`}
                      onClick={() => go(href.snapshot(sessionId, c.entry.id))}
                      onKeyDown={(k) => k.key === "Enter" && go(href.snapshot(sessionId, c.entry.id))}
                      {...tipProps(tip, content(c))}
                    >
                      {c.parts.map((v, i) => {
                        const y0 = yTok(base) ?? 0;
                        base += v;
                        const y1 = yTok(base) ?? 0;
                        return v > 0 ? <Bar key={i} x={left} y={y1} width={bw} height={Math.max(0, y0 - y1)} className={KINDS[i].className} /> : null;
                      })}
                      <rect x={left} y={0} width={bw} height={panel} className="hit" />
                    </g>
                  );
                })}
              </Group>
              <Group left={M.left} top={M.top + panel + GAP}>
                <AxisLeft scale={yCost} numTicks={3} tickFormat={(v) => costTick(Number(v))} tickLabelProps={{ ...AXIS_LABEL, textAnchor: "end", dx: -4, dy: "0.33em" }} stroke="#d9dee5" tickStroke="#d9dee5" />
                <AxisRight left={innerW} scale={yCum} numTicks={3} tickFormat={(v) => cumTick(Number(v))} tickLabelProps={{ ...AXIS_LABEL, textAnchor: "start", dx: 4, dy: "0.33em" }} stroke="#d9dee5" tickStroke="#d9dee5" />
                <AxisBottom
                  top={panel}
                  scale={x}
                  tickValues={calls.filter((c) => (c.n - 1) % every === 0).map((c) => c.n)}
                  tickFormat={(n) => `#${n}`}
                  tickLabelProps={{ ...AXIS_LABEL, textAnchor: "middle" }}
                  stroke="#d9dee5"
                  tickStroke="#d9dee5"
                />
                {calls.map((c) => {
                  const left = at(c.n);
                  if (c.cost === null)
                    return (
                      <text key={c.entry.id} x={left + bw / 2} y={panel - 3} textAnchor="middle" className="chart-note unpriced">
                        ?
                      </text>
                    );
                  const y1 = yCost(c.cost) ?? 0;
                  return <Bar key={c.entry.id} x={left} y={y1} width={bw} height={Math.max(0, panel - y1)} className="k-cost" {...tipProps(tip, content(c))} />;
                })}
                <LinePath
                  data={calls}
                  x={(c) => at(c.n) + bw / 2}
                  y={(c) => yCum(c.cumulative) ?? 0}
                  className="cumulative-line"
                  data-testid="cumulative-cost"
                  data-total={total.toFixed(8)}
                />
              </Group>
            </svg>
            {tip.element}
          </>
        );
      }}
    </ChartFrame>
  );
}
