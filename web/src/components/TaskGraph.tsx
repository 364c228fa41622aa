import { Background, Controls, Position, ReactFlow, type Edge, type Node } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { useMemo } from "react";
import { tokens } from "../format";
import type { Graph } from "../types";

/** The task tree (GET /v1/sessions/{id}/graph: nodes laid out by depth and order), coloured by
 * status. Clicking a task selects it (its snapshots are highlighted in the timeline). */
export function TaskGraph({
  graph,
  selected,
  onSelect,
}: {
  graph: Graph;
  selected: string | null;
  onSelect: (taskId: string | null) => void;
}) {
  const nodes: Node[] = useMemo(
    () =>
      graph.nodes.map((n) => ({
        id: n.id,
        position: n.position,
        // the API lays the tree out by depth along x: edges run left to right
        sourcePosition: Position.Right,
        targetPosition: Position.Left,
        className: `task-node status-${n.data.status}${selected === n.id ? " selected" : ""}`,
        data: {
          label: (
            <div data-task-id={n.id}>
              <strong>{n.data.label}</strong>
              <div className="small">
                {n.data.status} · {n.data.snapshot_count} snapshot{n.data.snapshot_count === 1 ? "" : "s"}
              </div>
              <div className="small muted">{tokens(n.data.token_total)} tokens</div>
            </div>
          ),
        },
        ariaLabel: `task ${n.data.label}, ${n.data.status}, ${n.data.snapshot_count} snapshots`,
      })),
    [graph, selected],
  );
  const edges: Edge[] = useMemo(() => graph.edges.map((e) => ({ ...e, animated: false })), [graph]);
  return (
    <div className="graph" aria-label="task tree">
      <ReactFlow
        nodes={nodes}
        edges={edges}
        fitView
        fitViewOptions={{ padding: 0.2, maxZoom: 1.2 }}
        nodesDraggable={false}
        nodesConnectable={false}
        onNodeClick={(_, node) => onSelect(node.id === selected ? null : node.id)}
        onPaneClick={() => onSelect(null)}
        minZoom={0.2}
      >
        <Background gap={24} />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
