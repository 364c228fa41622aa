// The REST API's JSON (snake_case), as kontex/api/shapes.py and services/views.py write it.

export type SessionStatus = "active" | "paused" | "completed";
export type TaskStatus = "pending" | "active" | "completed" | "failed";

export interface Session {
  id: string;
  name: string;
  description: string | null;
  metadata: Record<string, unknown>;
  status: SessionStatus;
  created_at: string;
  updated_at: string;
}

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens?: number | null;
  cache_write_tokens?: number | null;
  latency_ms?: number | null;
  cost_usd?: number | null;
}

export interface SessionStats {
  total_messages: number;
  total_tool_calls: number;
  total_snapshots: number;
  total_tokens: number;
  context_tokens: number;
  llm_calls: number;
  usage: { cost_usd?: number | null; [k: string]: unknown };
  last_activity_at?: string;
}

export interface Snapshot {
  id: string;
  session_id: string;
  task_id: string;
  label: string;
  source: string;
  model: string | null;
  token_total: number;
  parent_snapshot_id: string | null;
  rollback_of: string | null;
  forked_from: string | null;
  stored_bytes: number;
  captured_at: string;
  created_at: string;
  enriched: boolean;
  enriched_at: string | null;
  usage: Usage | null;
}

export interface TimelineEntry extends Snapshot {
  task_name: string | null;
  token_delta: number;
}

export interface Task {
  id: string;
  session_id: string;
  parent_task_id: string | null;
  name: string;
  status: TaskStatus;
  created_at: string;
  updated_at: string;
}

export interface GraphNode {
  id: string;
  data: { label: string; status: TaskStatus; token_total: number; snapshot_count: number };
  position: { x: number; y: number };
}

export interface Graph {
  nodes: GraphNode[];
  edges: { id: string; source: string; target: string }[];
}

export type ContentBlock =
  | { type: "text"; text: string }
  | { type: "thinking"; thinking: string; signature?: string }
  | { type: "redacted_thinking"; data?: string }
  | { type: "tool_use"; id: string; name: string; input: unknown }
  | { type: "tool_result"; tool_use_id: string; content: unknown; is_error?: boolean }
  | { type: string; [k: string]: unknown };

export interface Message {
  role: "system" | "user" | "assistant" | "tool";
  content: string | ContentBlock[];
}

export interface ToolCall {
  id: string;
  tool: string;
  input: unknown;
  output: unknown;
  status: "success" | "error" | "pending";
  timestamp: string | null;
}

export interface ContextFile {
  path: string;
  content: string;
  content_hash: string | null;
  token_count: number | null;
}

export interface LogEvent {
  type: string | null;
  message: string | null;
  level: string;
  timestamp: string | null;
  data: unknown;
}

export interface Bundle {
  messages: Message[];
  tool_calls: ToolCall[];
  files: ContextFile[];
  reasoning: string | null;
  log_events: LogEvent[];
  model: string | null;
  token_total: number | null;
  source: string;
  captured_at: string | null;
  usage: Usage | null;
}

export interface Revision {
  seq: number;
  created_at: string;
  [k: string]: unknown;
}

export interface Diff {
  from: string;
  to: string;
  messages: { common_prefix: number; added: Message[]; removed: Message[] };
  tool_calls: { added: ToolCall[]; removed: ToolCall[] };
  files: { added: string[]; removed: string[]; modified: string[] };
  token_delta: number;
}

export interface SearchHit {
  snapshot_id: string;
  session_id: string;
  task_id: string;
  label: string;
  score: number;
  created_at: string;
  snippet: { text: string; role: string | null; position: number | null; source: string };
}

export interface LiveEvent {
  type: string;
  session_id: string;
  data: Record<string, unknown>;
}
