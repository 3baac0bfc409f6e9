"""Runs workflow functions against their journals: replay, steps, retries, waits, serde."""
