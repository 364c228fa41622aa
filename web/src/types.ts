// The REST API's JSON (snake_case), generated from the server's /v1/openapi.json into
// api.gen.ts (clients/python/scripts/gen_models.py; the server's models in
// layers/core/kontex/api/shapes.py are the source). Here: the names the dashboard uses, the
// one generic envelope, and message content refined into the content blocks it draws.

import type { components } from "./api.gen";

type Schemas = components["schemas"];

export type SessionStatus = Schemas["SessionStatus"];
export type TaskStatus = Schemas["TaskStatus"];
export type Session = Schemas["Session"];
export type Usage = Schemas["Usage"];
export type SessionStats = Schemas["SessionStats"];
export type Snapshot = Schemas["Snapshot"];
export type TimelineEntry = Schemas["TimelineEntry"];
export type Task = Schemas["Task"];
export type TaskNode = Schemas["TaskNode"];
export type GraphNode = Schemas["GraphNode"];
export type Graph = Schemas["Graph"];
export type ToolCall = Schemas["ToolCall"];
export type ContextFile = Schemas["ContextFile"];
export type LogEvent = Schemas["LogEvent"];
export type Revision = Schemas["Revision"];
export type SearchHit = Schemas["SearchHit"];
export type LiveEvent = Schemas["LiveEvent"];

/** `usage` of GET /v1/sessions/{id}/stats: the session's captured LLM calls, each once. */
export interface UsageTotals {
  calls: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  total_tokens: number;
  cost_usd: number | null;
  unpriced_calls: number;
  latency_ms_total: number;
}

/** A list's page: ``SessionPage``, ``SnapshotPage``... as one generic type. */
export type Page<T> = Omit<Schemas["SessionPage"], "data"> & { data: T[] };

/** An Anthropic-style content block, as captured (unknown kinds are kept). */
export type ContentBlock =
  | { type: "text"; text: string }
  | { type: "thinking"; thinking: string; signature?: string }
  | { type: "redacted_thinking"; data?: string }
  | { type: "tool_use"; id: string; name: string; input: unknown }
  | { type: "tool_result"; tool_use_id: string; content: unknown; is_error?: boolean }
  | { type: string; [k: string]: unknown };

// (an intersection, not Omit: Omit loses the named keys of a type with an index signature)
export type Message = Schemas["Message"] & { content: string | ContentBlock[] };

export type Bundle = Omit<Schemas["Bundle"], "messages"> & { messages: Message[] };

export type Diff = Omit<Schemas["Diff"], "messages"> & {
  messages: Omit<Schemas["MessagesDiff"], "added" | "removed"> & { added: Message[]; removed: Message[] };
};
