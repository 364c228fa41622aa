"""A small ReAct-style LangGraph agent with a scripted chat model (no network): the model asks
for the ``lookup`` tool once per question, then answers from the tool's result."""

from __future__ import annotations

import hashlib
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

WORDS = (  # noqa: SIM905 (a sentence reads better than quoted words)
    "the agent reads a file then runs the tests and checks each failing case before it "
    "changes the handler because the retry budget is spent when the queue is slow"
).split()


def prose(seed: str, size: int) -> str:
    """About ``size`` bytes of deterministic text."""
    out: list[str] = []
    counter = 0
    while sum(len(w) + 1 for w in out) < size:
        digest = hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        out.extend(WORDS[b % len(WORDS)] for b in digest[:8])
        counter += 1
    return " ".join(out)[:size]


@tool
def lookup(query: str) -> str:
    """Look something up (a deterministic page of text about the query)."""
    return f"notes on {query}: " + prose(query, 1500)


class ScriptedChatModel(BaseChatModel):
    """Asks for ``lookup`` after a user message, answers after a tool result."""

    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls += 1
        last = messages[-1]
        if isinstance(last, ToolMessage):
            reply = AIMessage(content=f"From the notes: {str(last.content)[:300]}")
        else:
            question = str(last.content)
            reply = AIMessage(
                content="",
                tool_calls=[
                    {
                        "name": "lookup",
                        "args": {"query": question[:80]},
                        "id": f"call_{hashlib.sha256(question.encode()).hexdigest()[:12]}",
                    }
                ],
            )
        return ChatResult(generations=[ChatGeneration(message=reply)])


def build(checkpointer: BaseCheckpointSaver[Any]) -> Any:
    model = ScriptedChatModel().bind_tools([lookup])

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([lookup]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer)


def ask(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(content=text)]}
