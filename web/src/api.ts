// The REST client: one fetch wrapper, the error shape of docs/design.md ("Public contracts"), the key in sessionStorage.

const KEY_STORAGE = "kontex.apiKey";

export interface Config {
  /** Base of the REST API ("" = this origin: kontex dev, or CloudFront's /v1/* behaviour). */
  api_url: string;
  /** The live feed's WebSocket URL; null = no live feed in this deployment. */
  live_url: string | null;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public details: unknown = null,
  ) {
    super(message);
  }
}

function defaultLiveUrl(): string {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/ws`;
}

/** `config.json` beside the page (written at deploy on AWS); absent locally, where the API and
 * the live feed share the page's origin. */
export async function loadConfig(): Promise<Config> {
  const fallback: Config = { api_url: "", live_url: defaultLiveUrl() };
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) return fallback;
    const raw = (await response.json()) as Partial<Config>;
    return {
      api_url: (raw.api_url ?? "").replace(/\/+$/, ""),
      live_url: raw.live_url === undefined ? fallback.live_url : raw.live_url,
    };
  } catch {
    return fallback;
  }
}

export const storedKey = {
  get: (): string | null => sessionStorage.getItem(KEY_STORAGE),
  set: (key: string) => sessionStorage.setItem(KEY_STORAGE, key),
  clear: () => sessionStorage.removeItem(KEY_STORAGE),
};

type Unauthorized = (error: ApiError) => void;

export class Api {
  constructor(
    private base: string,
    public key: string,
    private onUnauthorized: Unauthorized = () => {},
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers: {
          Authorization: `Bearer ${this.key}`,
          ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (error) {
      throw new ApiError(0, "network_error", `The API did not answer (${String(error)}).`);
    }
    const text = await response.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!response.ok) {
      const shaped = (json ?? {}) as { error?: string; message?: string; details?: unknown };
      const error = new ApiError(
        response.status,
        shaped.error ?? `http_${response.status}`,
        shaped.message ?? (response.statusText || `HTTP ${response.status}`),
        shaped.details ?? null,
      );
      if (response.status === 401) this.onUnauthorized(error);
      throw error;
    }
    return json as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("POST", path, body);
  }
}

export function qs(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") search.set(k, String(v));
  const s = search.toString();
  return s ? `?${s}` : "";
}
