"""What the LLM client sends and when: prompts, request bodies and arrival schedules, all pure and seeded.

Everything here is built before the run (``orch.clients.ollama_benchmark.run``), so the load itself
only writes prepared bytes at prepared times.

  * prompts: one per line of ``--prompts-file`` (a JSONL line may be ``{"prompt": ...}`` or a JSON
    string; ``parse_prompts``), else synthetic prompts of ``--prompt-length`` *words* drawn with the
    seed (``synthetic_prompts``; tokens are approximated by words, nothing is tokenized). At most
    ``MAX_DISTINCT_PROMPTS`` distinct prompts are built and reused in turn.
  * bodies (``request_body``): ``--max-tokens`` -> Ollama ``options.num_predict`` / OpenAI
    ``max_tokens``; ``--seed`` -> Ollama ``options.seed`` / OpenAI ``seed``; OpenAI asks for
    ``stream_options.include_usage`` (the server's token count).
  * open-loop schedule (``arrival_offsets_ns``): exponential gaps (Poisson) or constant ones from a
    seeded RNG, rescaled so the schedule's rate is exactly the requested one (as ``vllm bench serve``).
"""
import json
import random

__all__ = ("WORDS", "MAX_DISTINCT_PROMPTS", "synthetic_prompts", "parse_prompts", "request_body",
           "arrival_offsets_ns", "api_path", "models_path", "first_model")

MAX_DISTINCT_PROMPTS = 1024

WORDS = (
    "the of and to in is that it for on with as was at by be this from have or an are not which but "
    "all were when we there can one has more their if will out so up about what some time them into "
    "other than then its only could new these two may first any like now my over such our man me even "
    "most made after also did many before must through back years where much your way well down should "
    "because each just those people how too little state good very make world still own see men work "
    "long get here between both life being under never day same another know while last might us great "
    "old year off come since against go came right used take three"
).split()


def synthetic_prompts(count, length, seed):
    """``count`` prompts of ``length`` words, the same for the same seed (None: seed 0).

    >>> synthetic_prompts(2, 3, 7) == synthetic_prompts(2, 3, 7), len(synthetic_prompts(1, 5, 1)[0].split())
    (True, 5)
    """
    rng = random.Random(0 if seed is None else seed)
    return [" ".join(rng.choices(WORDS, k=length)) for _ in range(count)]


def parse_prompts(text, source):
    """The prompts of a prompts file's text (``source`` names it in errors): one per non-blank line.

    >>> parse_prompts('{"prompt": "why"}\\nplain words\\n\\n"a json string"\\n', "p.jsonl")
    ['why', 'plain words', 'a json string']
    """
    prompts = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        if line.lstrip()[:1] in ("{", '"'):
            try:
                value = json.loads(line)
            except ValueError:
                value = line
            if isinstance(value, dict):
                value = value.get("prompt", value.get("text"))
            if not isinstance(value, str):
                raise ValueError("%s: a JSONL line needs a \"prompt\" string" % source)
            line = value
        prompts.append(line)
    if not prompts:
        raise ValueError("%s: no prompts" % source)
    return prompts


def request_body(api, model, prompt, max_tokens, seed):
    """The bytes of one streaming request to ``api`` (``generate``, ``chat`` or ``openai``).

    >>> request_body("generate", "m", "hi", 5, None)
    b'{"model": "m", "stream": true, "options": {"num_predict": 5}, "prompt": "hi"}'
    """
    if api == "openai":
        body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True,
                "stream_options": {"include_usage": True}, "max_tokens": max_tokens}
        if seed is not None:
            body["seed"] = seed
    else:
        options = {"num_predict": max_tokens}
        if seed is not None:
            options["seed"] = seed
        body = {"model": model, "stream": True, "options": options}
        if api == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
    return json.dumps(body).encode()


def arrival_offsets_ns(count, rate, arrival, seed):
    """Intended send times (ns from the start) of ``count`` requests at ``rate`` per second.

    >>> arrival_offsets_ns(3, 2.0, "constant", 0)
    [0, 500000000, 1000000000]
    """
    if count <= 1:
        return [0] * count
    rng = random.Random(0 if seed is None else seed)
    gaps = [rng.expovariate(rate) if arrival == "poisson" else 1.0 / rate for _ in range(count - 1)]
    scale = (count - 1) / rate / sum(gaps)  # the schedule's rate is exactly `rate`
    offsets, t = [0], 0.0
    for gap in gaps:
        t += gap * scale
        offsets.append(int(round(t * 1e9)))
    return offsets


def api_path(api):
    """The streaming endpoint of an API.

    >>> api_path("openai"), api_path("chat")
    ('/v1/chat/completions', '/api/chat')
    """
    return "/v1/chat/completions" if api == "openai" else "/api/" + api


def models_path(api):
    """Where the server lists its models."""
    return "/v1/models" if api == "openai" else "/api/tags"


def first_model(listing, api):
    """The first model of the server's list (``models_path``'s JSON), None when it lists none.

    >>> first_model({"models": [{"name": "llama3:8b"}]}, "generate"), first_model({"data": []}, "openai")
    ('llama3:8b', None)
    """
    items = listing.get("data" if api == "openai" else "models") or []
    if not items:
        return None
    return items[0].get("id") if api == "openai" else (items[0].get("name") or items[0].get("model"))
