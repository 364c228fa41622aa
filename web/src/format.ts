export function ago(iso: string | null | undefined): string {
  if (!iso) return "—";
  const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

export function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "—";
}

export function tokens(n: number | null | undefined): string {
  return n === null || n === undefined ? "—" : n.toLocaleString("en-US");
}

export function signed(n: number): string {
  return (n > 0 ? "+" : n < 0 ? "−" : "±") + Math.abs(n).toLocaleString("en-US");
}

export function usd(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  return n < 0.01 && n > 0 ? `$${n.toFixed(5)}` : `$${n.toFixed(2)}`;
}

export function ms(n: number | null | undefined): string {
  return n === null || n === undefined ? "—" : n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`;
}

export function json(value: unknown): string {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    return String(value);
  }
}

export function short(id: string): string {
  return id.length > 14 ? `${id.slice(0, 5)}…${id.slice(-6)}` : id;
}

/** A time from the start of a run, for axes: "+0 ms", "+850 ms", "+4.2 s", "+3 min 20 s", "+2 h 5 min". */
export function elapsed(n: number): string {
  const a = Math.abs(n);
  const sign = n < 0 ? "−" : "+";
  if (a < 1000) return `${sign}${Math.round(a)} ms`;
  if (a < 60_000) return `${sign}${Number((a / 1000).toFixed(a < 10_000 ? 2 : 1))} s`;
  if (a < 3_600_000) {
    const m = Math.floor(a / 60_000);
    const s = Math.round((a % 60_000) / 1000);
    return `${sign}${m} min${s ? ` ${s} s` : ""}`;
  }
  if (a < 86_400_000) {
    const h = Math.floor(a / 3_600_000);
    const m = Math.round((a % 3_600_000) / 60_000);
    return `${sign}${h} h${m ? ` ${m} min` : ""}`;
  }
  return `${sign}${(a / 86_400_000).toFixed(1)} d`;
}

/** A dollar axis's tick formatter: as many decimals as the axis's top needs, the same for every tick. */
export function usdTicks(top: number): (v: number) => string {
  const decimals = top > 0 ? Math.min(6, Math.max(2, Math.ceil(-Math.log10(top)) + 1)) : 2;
  return (v: number) => `$${v.toFixed(decimals)}`;
}
