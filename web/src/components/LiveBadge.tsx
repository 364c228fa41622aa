import type { LiveState } from "../live";

export function LiveBadge({ state, reason, onRetry }: { state: LiveState; reason: string; onRetry: () => void }) {
  if (state === "live") {
    return (
      <span className="badge live" role="status" aria-live="polite" title="new snapshots appear as they are made">
        ● live
      </span>
    );
  }
  if (state === "connecting") {
    return (
      <span className="badge connecting" role="status" aria-live="polite">
        connecting…
      </span>
    );
  }
  return (
    <span className="badge off" role="status" aria-live="polite" title={reason}>
      live off{reason ? `: ${reason}` : ""}{" "}
      <button type="button" className="link" onClick={onRetry}>
        retry
      </button>
    </span>
  );
}
