// The live feed protocol of docs/design.md ("Public contracts"): first frame {"authorization": key}; then
// {"id","action":"subscribe","data":{"session_id"}}; pushed {"type","session_id","data"}.

import type { LiveEvent } from "./types";

export type LiveState = "connecting" | "live" | "off";

type Listener = (event: LiveEvent) => void;

const CONNECT_TIMEOUT_MS = 5000;

export class LiveFeed {
  private socket: WebSocket | null = null;
  private seq = 0;
  private subscribed: string | null = null;
  private retryTimer: number | undefined;
  private attempts = 0;
  state: LiveState = "off";
  reason = "";

  constructor(
    private url: string | null,
    private key: string,
    private onEvent: Listener,
    private onState: (state: LiveState, reason: string) => void,
  ) {}

  private setState(state: LiveState, reason = "") {
    this.state = state;
    this.reason = reason;
    this.onState(state, reason);
  }

  /** Connect and follow one session; a refused or dropped socket is "off" (retried a few
   * times with backoff, then on demand with `retry()`). */
  follow(sessionId: string) {
    this.subscribed = sessionId;
    this.open();
  }

  retry() {
    this.attempts = 0;
    this.open();
  }

  close() {
    this.subscribed = null;
    window.clearTimeout(this.retryTimer);
    const socket = this.socket;
    this.socket = null;
    socket?.close();
  }

  private open() {
    window.clearTimeout(this.retryTimer);
    this.socket?.close();
    this.socket = null;
    if (!this.url) {
      this.setState("off", "this deployment has no live feed");
      return;
    }
    this.setState("connecting");
    let socket: WebSocket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      this.setState("off", String(error));
      return;
    }
    this.socket = socket;
    let authorized = false;
    // A socket that never opens (a browser that blocks it by the page's Content-Security-Policy
    // fires no close; a black-holed network hangs) is off after CONNECT_TIMEOUT_MS.
    const giveUp = window.setTimeout(() => {
      if (this.socket !== socket || socket.readyState === WebSocket.OPEN) return;
      this.socket = null;
      socket.close();
      this.setState("off", "the live feed is not reachable");
    }, CONNECT_TIMEOUT_MS);
    socket.onopen = () => {
      window.clearTimeout(giveUp);
      socket.send(JSON.stringify({ authorization: this.key }));
    };
    socket.onmessage = (message) => {
      let frame: Record<string, unknown>;
      try {
        frame = JSON.parse(String(message.data)) as Record<string, unknown>;
      } catch {
        return;
      }
      if (!authorized) {
        if (frame.success === true) {
          authorized = true;
          this.send("subscribe", { session_id: this.subscribed });
        } else {
          this.setState("off", String(frame.message ?? frame.error ?? "the live feed refused the key"));
          socket.close();
        }
        return;
      }
      if (typeof frame.type === "string") {
        this.onEvent(frame as unknown as LiveEvent);
      } else if ("id" in frame && frame.success === true) {
        this.attempts = 0;
        this.setState("live");
      } else if ("id" in frame && frame.success === false) {
        this.setState("off", String(frame.message ?? frame.error ?? "subscribe refused"));
      }
    };
    socket.onclose = () => {
      window.clearTimeout(giveUp);
      if (this.socket !== socket) return; // replaced or closed on purpose
      this.socket = null;
      this.setState("off", this.reason || "the live feed is not reachable");
      if (this.subscribed && this.attempts < 3) {
        this.attempts += 1;
        this.retryTimer = window.setTimeout(() => this.open(), 1000 * 2 ** this.attempts);
      }
    };
  }

  private send(action: string, data: Record<string, unknown>) {
    this.seq += 1;
    this.socket?.send(JSON.stringify({ id: `dash-${this.seq}`, action, data }));
  }
}
