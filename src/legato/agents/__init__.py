"""Agents: a loop of journaled model calls and gated tool calls (see agent.py)."""

from legato.agents.agent import Agent, AgentResult, AgentToolCall, Compaction

__all__ = ["Agent", "AgentResult", "AgentToolCall", "Compaction"]
