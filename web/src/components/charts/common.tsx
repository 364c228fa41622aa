// What the charts share: the colours, a snapshot's time, the frame that measures its width, a
// tooltip (React text only: names and labels are never HTML), axis label styles.
import { useParentSize } from "@visx/responsive";
import { TooltipWithBounds, useTooltip } from "@visx/tooltip";
import { useCallback, type ReactNode } from "react";
import type { TimelineEntry } from "../../types";

/** One colour per task, in the order of the task tree (distinct for the colour-blind first). */
export const TASK_COLOURS = ["#2457c5", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7a3fc4", "#5b6675"];

export function taskColour(index: number): string {
  return TASK_COLOURS[((index % TASK_COLOURS.length) + TASK_COLOURS.length) % TASK_COLOURS.length];
}

/** When a snapshot came to be in the run: when its content was captured (an LLM call's: when
 * its answer was complete); a fork's, which restates its source's capture time, when it was
 * made. */
export function capturedAt(entry: TimelineEntry): number {
  return new Date(entry.forked_from ? entry.created_at : (entry.captured_at ?? entry.created_at)).getTime();
}

/** Whether the snapshot records an LLM call: it has usage and does not restate another
 * snapshot (a rollback or a fork is not a call: the session's stats count it the same way). */
export function isCall(entry: Pick<TimelineEntry, "usage" | "rollback_of" | "forked_from">): boolean {
  return Boolean(entry.usage) && !entry.rollback_of && !entry.forked_from;
}

export const AXIS_LABEL = { fill: "#5b6675", fontSize: 11, fontFamily: "inherit" } as const;

/** A chart's frame: a labelled figure whose SVG takes the width its card gives it. */
export function ChartFrame({
  id,
  title,
  caption,
  legend,
  height,
  children,
  testId,
}: {
  id: string;
  title: string;
  caption?: ReactNode;
  legend?: ReactNode;
  /** The drawing's height; none: as tall as its content. */
  height?: number;
  children: (width: number) => ReactNode;
  testId: string;
}) {
  const { parentRef, width } = useParentSize({ debounceTime: 50 });
  return (
    <figure className="chart card" aria-labelledby={`${id}-title`} data-testid={testId}>
      <h2 id={`${id}-title`}>{title}</h2>
      {caption && <figcaption className="muted small">{caption}</figcaption>}
      {legend && <div className="legend chart-legend small">{legend}</div>}
      <div ref={parentRef} className="chart-body" style={height ? { height } : undefined}>
        {width > 0 && children(width)}
      </div>
    </figure>
  );
}

export interface Tip {
  title: string;
  rows: [string, string][];
}

/** A hover (or focus) tooltip whose content is React text. */
export function useTip() {
  const { tooltipOpen, tooltipLeft, tooltipTop, tooltipData, showTooltip, hideTooltip } = useTooltip<Tip>();
  const show = useCallback(
    (event: React.MouseEvent<Element> | React.FocusEvent<Element>, tip: Tip) => {
      const box = (event.currentTarget as Element).closest(".chart-body")?.getBoundingClientRect();
      const target = (event.currentTarget as Element).getBoundingClientRect();
      const x = "clientX" in event ? event.clientX : target.left + target.width / 2;
      const y = "clientY" in event ? event.clientY : target.top;
      showTooltip({ tooltipLeft: x - (box?.left ?? 0), tooltipTop: y - (box?.top ?? 0), tooltipData: tip });
    },
    [showTooltip],
  );
  const element =
    tooltipOpen && tooltipData ? (
      <TooltipWithBounds left={tooltipLeft} top={tooltipTop} className="chart-tip" unstyled applyPositionStyle>
        <div role="tooltip" data-testid="chart-tooltip">
          <b>{tooltipData.title}</b>
          <dl>
            {tooltipData.rows.map(([k, v]) => (
              <div key={k}>
                <dt>{k}</dt>
                <dd>{v}</dd>
              </div>
            ))}
          </dl>
        </div>
      </TooltipWithBounds>
    ) : null;
  return { show, hide: hideTooltip, element };
}

/** Props that open the tooltip on hover and on keyboard focus, and close it after. */
export function tipProps(tip: ReturnType<typeof useTip>, content: Tip) {
  return {
    onMouseMove: (e: React.MouseEvent<Element>) => tip.show(e, content),
    onMouseLeave: () => tip.hide(),
    onFocus: (e: React.FocusEvent<Element>) => tip.show(e, content),
    onBlur: () => tip.hide(),
  };
}
