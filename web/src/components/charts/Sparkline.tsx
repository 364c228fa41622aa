// A session's activity at a glance: its snapshots per slice of its life (GET .../stats
// `activity`), as small bars.
import { scaleBand, scaleLinear } from "@visx/scale";
import { Bar } from "@visx/shape";
import { ms, when } from "../../format";
import type { SessionStats } from "../../types";

const W = 96;
const H = 22;

export function Sparkline({ activity }: { activity: SessionStats["activity"] }) {
  const counts = activity.snapshots;
  const total = counts.reduce((a, b) => a + b, 0);
  if (!activity.start || !activity.end || total === 0) return <span className="muted small">no snapshots</span>;
  const life = new Date(activity.end).getTime() - new Date(activity.start).getTime();
  const describe =
    counts.length > 1
      ? `${total} snapshot${total === 1 ? "" : "s"} from ${when(activity.start)} to ${when(activity.end)}, in ${counts.length} slices of ${ms(life / counts.length)}; busiest slice ${Math.max(...counts)}`
      : `${total} snapshot${total === 1 ? "" : "s"} at ${when(activity.start)}`;
  const x = scaleBand({ domain: counts.map((_, i) => i), range: [0, W], padding: 0.15 });
  const y = scaleLinear({ domain: [0, Math.max(...counts)], range: [H - 1, 1] });
  return (
    <svg className="sparkline" width={W} height={H} role="img" aria-label={describe} data-testid="sparkline" data-counts={counts.join(",")}>
      <title>{describe}</title>
      <line x1={0} y1={H - 0.5} x2={W} y2={H - 0.5} className="baseline" />
      {counts.map((n, i) =>
        n > 0 ? <Bar key={i} x={x(i) ?? 0} y={y(n) ?? 0} width={x.bandwidth()} height={H - 1 - (y(n) ?? 0)} className="spark-bar" /> : null,
      )}
    </svg>
  );
}
