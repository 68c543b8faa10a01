"""ollama_benchmark: streams generations from the target Ollama and times every token."""
from orch import schema
from orch.kinds.client import Each, client_kind

__all__ = ("KIND",)

# requests per second: a decimal number, or several ("1,2.5,10"): a sweep
RATE = schema.TextList(item=schema.Text(pattern=r"[0-9]+(\.[0-9]+)?", hint="a rate in requests per second"),
                       split_commas=True, sweep=True)

KIND = client_kind(
    "ollama_benchmark",
    target="ollama",
    summary="LLM load over Ollama's streaming API (model, num_requests, concurrent_requests, request_rate, "
            "prompt_length, max_tokens)",
    parameters={
        "model": schema.Text(pattern=r"[A-Za-z0-9][A-Za-z0-9._:/-]*", hint="an Ollama model name"),
        "num_requests": schema.Numbers(1),
        "concurrent_requests": schema.Numbers(1, 100000),
        "prompts": schema.TextList(),
        "prompt_length": schema.Numbers(1, 1000000),
        "max_tokens": schema.Numbers(1, 1000000),
        "api": schema.Text(choices=("generate", "chat", "openai")),
        "seed": schema.Integer(0),
        "request_rate": RATE,  # open loop (Poisson arrivals); concurrent_requests is then a cap
        "arrival": schema.Text(choices=("poisson", "constant")),
        "prompts_file": schema.Text(allow_empty=False),
        "warmup": schema.Integer(0),  # requests excluded from the figures
        "timeout": schema.Integer(1),  # per-request, seconds
    },
    aliases={
        "prompt_lengths": "prompt_length",
        "operations_per_test": "num_requests",
        "rate": "request_rate",
        "warmup_requests": "warmup",
    },
    base_url=True,
    flags={
        "model": "--model",
        "num_requests": "--num-requests",
        "concurrent_requests": "--concurrency",
        "prompt_length": "--prompt-length",
        "max_tokens": "--max-tokens",
        "api": "--api",
        "seed": "--seed",
        "request_rate": "--request-rate",
        "arrival": "--arrival",
        "prompts_file": "--prompts-file",
        "prompts": Each("--prompt"),
        "warmup": "--warmup",
        "timeout": "--timeout",
    },
    check=lambda parameters: ([("prompts_file", "also given as prompts: give one of them")]
                              if "prompts" in parameters and "prompts_file" in parameters else []),
)
