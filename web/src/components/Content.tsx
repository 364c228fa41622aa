// A bundle's parts: messages by role with their blocks, tool calls, files, log events.
import { json, when } from "../format";
import type { ContentBlock, ContextFile, LogEvent, Message, ToolCall } from "../types";

function Block({ block }: { block: ContentBlock }) {
  switch (block.type) {
    case "text":
      return <div className="block text">{String((block as { text: string }).text)}</div>;
    case "thinking":
    case "redacted_thinking":
      return (
        <details className="block thinking">
          <summary>thinking</summary>
          <pre>{String((block as { thinking?: string }).thinking ?? "(redacted)")}</pre>
        </details>
      );
    case "tool_use": {
      const b = block as { id: string; name: string; input: unknown };
      return (
        <div className="block tool-use">
          <div className="block-head">
            tool_use <b>{b.name}</b> <span className="mono muted">{b.id}</span>
          </div>
          <pre>{json(b.input)}</pre>
        </div>
      );
    }
    case "tool_result": {
      const b = block as { tool_use_id: string; content: unknown; is_error?: boolean };
      const content = Array.isArray(b.content)
        ? b.content.map((c: { type?: string; text?: string }) => (c.type === "text" ? c.text : json(c))).join("\n")
        : json(b.content);
      return (
        <div className={`block tool-result${b.is_error ? " is-error" : ""}`}>
          <div className="block-head">
            tool_result{b.is_error ? " (error)" : ""} <span className="mono muted">{b.tool_use_id}</span>
          </div>
          <pre>{content}</pre>
        </div>
      );
    }
    default:
      return (
        <div className="block other">
          <div className="block-head">{block.type}</div>
          <pre>{json(block)}</pre>
        </div>
      );
  }
}

export function MessageView({ message, index, mark }: { message: Message; index?: number; mark?: "added" | "removed" }) {
  const blocks: ContentBlock[] =
    typeof message.content === "string" ? [{ type: "text", text: message.content }] : message.content;
  return (
    <article className={`message role-${message.role}${mark ? ` ${mark}` : ""}`} aria-label={`${message.role} message`}>
      <header>
        {mark === "added" ? "+ " : mark === "removed" ? "− " : ""}
        <span className="role">{message.role}</span>
        {index !== undefined && <span className="muted small"> #{index + 1}</span>}
      </header>
      {blocks.map((b, i) => (
        <Block key={i} block={b} />
      ))}
    </article>
  );
}

export function Messages({ messages, offset = 0, mark }: { messages: Message[]; offset?: number; mark?: "added" | "removed" }) {
  if (messages.length === 0) return <p className="muted">None.</p>;
  return (
    <div className="messages">
      {messages.map((m, i) => (
        <MessageView key={i} message={m} index={offset + i} mark={mark} />
      ))}
    </div>
  );
}

export function ToolCalls({ calls, mark }: { calls: ToolCall[]; mark?: "added" | "removed" }) {
  if (calls.length === 0) return <p className="muted">None.</p>;
  return (
    <div className="tool-calls">
      {calls.map((c) => (
        <details key={c.id + (mark ?? "")} className={`tool-call${mark ? ` ${mark}` : ""}`} open={calls.length <= 4}>
          <summary>
            {mark === "added" ? "+ " : mark === "removed" ? "− " : ""}
            <b>{c.tool}</b> <span className={`status status-${c.status}`}>{c.status}</span>{" "}
            <span className="mono muted small">{c.id}</span>
            {c.timestamp && <span className="muted small"> · {when(c.timestamp)}</span>}
          </summary>
          <div className="io">
            <div>
              <h4>input</h4>
              <pre>{json(c.input)}</pre>
            </div>
            <div>
              <h4>output</h4>
              <pre>{c.output === null || c.output === undefined ? "(none yet)" : json(c.output)}</pre>
            </div>
          </div>
        </details>
      ))}
    </div>
  );
}

export function Files({ files }: { files: ContextFile[] }) {
  if (files.length === 0) return <p className="muted">None.</p>;
  return (
    <div className="files">
      {files.map((f) => (
        <details key={f.path} className="file">
          <summary>
            <span className="mono">{f.path}</span>{" "}
            <span className="muted small">
              {f.token_count ?? "?"} tokens · {f.content_hash ? f.content_hash.slice(0, 12) : ""}
            </span>
          </summary>
          <pre className="code">{f.content}</pre>
        </details>
      ))}
    </div>
  );
}

export function LogEvents({ events }: { events: LogEvent[] }) {
  if (events.length === 0) return <p className="muted">None.</p>;
  return (
    <table className="grid">
      <thead>
        <tr>
          <th scope="col">Time</th>
          <th scope="col">Level</th>
          <th scope="col">Type</th>
          <th scope="col">Message / data</th>
        </tr>
      </thead>
      <tbody>
        {events.map((e, i) => (
          <tr key={i}>
            <td>{when(e.timestamp)}</td>
            <td>{e.level}</td>
            <td>{e.type ?? ""}</td>
            <td>
              {e.message}
              {e.data !== null && e.data !== undefined && <pre className="small">{json(e.data)}</pre>}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
