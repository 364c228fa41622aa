import { structuredPatch } from "diff";
import { useMemo } from "react";

/** A unified line diff (3 lines of context) of two versions of a file. */
export function LineDiff({ path, before, after }: { path: string; before: string; after: string }) {
  const patch = useMemo(
    () => structuredPatch(path, path, before, after, undefined, undefined, { context: 3 }),
    [path, before, after],
  );
  if (!patch || patch.hunks.length === 0) return <p className="muted">Same text (only metadata changed).</p>;
  return (
    <div className="line-diff" role="table" aria-label={`line diff of ${path}`}>
      {patch.hunks.map((hunk, h) => {
        let oldLine = hunk.oldStart;
        let newLine = hunk.newStart;
        return (
          <div key={h} className="hunk" role="rowgroup">
            <div className="hunk-head" role="row">
              @@ −{hunk.oldStart},{hunk.oldLines} +{hunk.newStart},{hunk.newLines} @@
            </div>
            {hunk.lines.map((line, i) => {
              const kind = line[0] === "+" ? "add" : line[0] === "-" ? "del" : line[0] === "\\" ? "meta" : "ctx";
              const o = kind === "add" || kind === "meta" ? "" : String(oldLine++);
              const n = kind === "del" || kind === "meta" ? "" : String(newLine++);
              return (
                <div key={i} className={`line ${kind}`} role="row">
                  <span className="ln" aria-hidden="true">{o}</span>
                  <span className="ln" aria-hidden="true">{n}</span>
                  <span className="sign" aria-hidden="true">{kind === "add" ? "+" : kind === "del" ? "−" : " "}</span>
                  <code>{line.slice(1)}</code>
                </div>
              );
            })}
          </div>
        );
      })}
    </div>
  );
}
