"""ollama_benchmark: streams generations from the target Ollama and times every token."""
from orch import schema
from orch.kinds.client import client_kind

__all__ = ("KIND",)

KIND = client_kind(
    "ollama_benchmark",
    target="ollama",
    summary="LLM load over Ollama's streaming API (model, num_requests, concurrent_requests, prompt_length, max_tokens)",
    parameters={
        "model": schema.Text(pattern=r"[A-Za-z0-9][A-Za-z0-9._:/-]*", hint="an Ollama model name"),
        "num_requests": schema.Numbers(1),
        "concurrent_requests": schema.Numbers(1, 100000),
        "prompts": schema.TextList(),
        "prompt_length": schema.Numbers(1, 1000000),
        "max_tokens": schema.Numbers(1, 1000000),
        "api": schema.Text(choices=("generate", "chat", "openai")),
        "seed": schema.Integer(0),
    },
    aliases={
        "prompt_lengths": "prompt_length",
        "operations_per_test": "num_requests",
    },
    flags={
        "model": "--model",
        "num_requests": "--num-requests",
        "concurrent_requests": "--concurrency",
        "prompt_length": "--prompt-length",
        "max_tokens": "--max-tokens",
        "api": "--api",
        "seed": "--seed",
    },
)
