"""What the AI layer learned about deployments: one JSON value per (deployment, fact), the
last write wins, and each deployment's facts are its own."""

from __future__ import annotations

from legato.store.base import Store
from legato.testing.conformance.records import NOW


async def check_facts_are_learned_read_and_overwritten(store: Store) -> None:
    assert await store.deployment_facts("vllm:qwen") == {}
    await store.learn_about_deployment("vllm:qwen", "output.native", "false", NOW)
    await store.learn_about_deployment("vllm:qwen", "template_tokens", "23", NOW)
    await store.learn_about_deployment("openai:gpt-4o", "output.native", "true", NOW)
    assert await store.deployment_facts("vllm:qwen") == {
        "output.native": "false",
        "template_tokens": "23",
    }
    # a server upgraded: learned again, the last write wins
    await store.learn_about_deployment("vllm:qwen", "output.native", "true", NOW + 1)
    assert (await store.deployment_facts("vllm:qwen"))["output.native"] == "true"
    assert await store.deployment_facts("openai:gpt-4o") == {"output.native": "true"}
    assert await store.deployment_facts("vllm") == {}  # names match exactly
