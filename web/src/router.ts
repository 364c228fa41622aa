// Hash routes: the page is one file on any static host (CloudFront needs no error-page rewrite
// that would also turn the API's 404s into HTML), and links survive a reload.
import { useEffect, useState } from "react";

export type Route =
  | { name: "sessions" }
  | { name: "session"; session: string }
  | { name: "snapshot"; session: string; snapshot: string }
  | { name: "diff"; session: string; from: string; to: string };

export function parse(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "sessions" && parts[1]) {
    if (parts[2] === "snapshots" && parts[3]) return { name: "snapshot", session: parts[1], snapshot: parts[3] };
    if (parts[2] === "diff") return { name: "diff", session: parts[1], from: parts[3] ?? "", to: parts[4] ?? "" };
    return { name: "session", session: parts[1] };
  }
  return { name: "sessions" };
}

export const href = {
  sessions: () => "#/",
  session: (s: string) => `#/sessions/${encodeURIComponent(s)}`,
  snapshot: (s: string, snap: string) => `#/sessions/${encodeURIComponent(s)}/snapshots/${encodeURIComponent(snap)}`,
  diff: (s: string, from: string, to: string) =>
    `#/sessions/${encodeURIComponent(s)}/diff/${encodeURIComponent(from)}/${encodeURIComponent(to)}`,
};

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parse(location.hash));
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

export function go(to: string) {
  location.hash = to;
}
