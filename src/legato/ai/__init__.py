"""The AI layer: providers, routing, usage and cost, budgets, structured output, cache.

Nothing here touches the network at import time; provider SDKs are imported when a client is
first built.
"""
