"""legato.toml: where each field is written, for error messages."""

from __future__ import annotations

from legato.ai.config import toml_lines


def test_toml_lines_map_tables_keys_and_arrays_of_tables() -> None:
    text = (
        "top = 1\n"
        "[providers.openai]  # a comment\n"
        'base_url = "x"\n'
        '"odd key".nested = 2\n'
        "[[servers]]\n"
        "name = 'a'\n"
        "[[servers]]\n"
        "name = 'b'\n"
        "[ models . 'fast' ]\n"
        "candidates = [\n"
        '  "openai:gpt",\n'
        "]\n"
    )
    lines = toml_lines(text)
    assert lines[("top",)] == 1
    assert lines[("providers",)] == lines[("providers", "openai")] == 2
    assert lines[("providers", "openai", "base_url")] == 3
    assert lines[("providers", "openai", "odd key", "nested")] == 4
    assert lines[("servers", 0, "name")] == 6 and lines[("servers", 1, "name")] == 8
    assert lines[("models", "fast", "candidates")] == 10
