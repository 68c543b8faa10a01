"""llm_benchmark: the ``ollama_benchmark`` client for any OpenAI-compatible server (vLLM, llama.cpp, ...).

Same flags, metrics and results as ``orch.clients.ollama_benchmark`` (every definition is in
``orch.clients.llm_results``); only the default API differs: ``--api openai`` (``/v1/chat/completions``,
SSE with ``stream_options.include_usage``).
"""
import sys

from orch.clients.ollama_benchmark import main as _main

__all__ = ("main",)


def main(argv=None):
    return _main(argv, client_name="llm_benchmark", default_api="openai")


if __name__ == "__main__":
    sys.exit(main())
