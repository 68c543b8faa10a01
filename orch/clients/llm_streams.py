"""How an LLM server's streamed answer reads: framing and the per-chunk decision, pure functions over bytes.

The driver (``orch.clients.ollama_benchmark``) keeps, per response, only ``[(t, bytes)]``: each socket
read with the ``perf_counter_ns`` it took when the read returned. Everything here runs after the
response has ended, on those pairs; nothing here reads a clock or a socket.

Framing: both APIs are lines. Ollama (``/api/generate``, ``/api/chat``) streams NDJSON, one JSON object
per line; OpenAI-compatible servers stream SSE, whose ``data:`` lines carry one JSON object each or
``[DONE]`` (``event:``, ``id:``, ``retry:`` and ``: comment`` lines say nothing here). A line's time is
that of the read that completed it (``split_lines``).

The decision per line (``read_chunk``) is a ``Chunk``:
  * ``token``: which token the chunk carries, or None: ``"content"`` (Ollama ``response`` /
    ``message.content``, OpenAI ``delta.content`` / ``text``), ``"reasoning"`` (Ollama ``thinking``,
    OpenAI ``reasoning_content`` / ``reasoning``) or ``"tool_calls"``. A role-only chunk, an empty
    delta, a usage chunk carry none: they are never a token (MEASUREMENT.md section 1).
  * ``done``: the end of the stream: Ollama's ``"done": true`` object, OpenAI's ``[DONE]``.
  * ``final``: Ollama's done object itself (the server's counts and durations).
  * ``usage``: OpenAI's ``usage`` object (``stream_options.include_usage``).
  * ``error``: ``"server error: ..."`` (an ``error`` member) or ``"unparsable chunk"``.
``parse_stream`` folds one response's lines into its outcome (``stream_outcome``).
"""
import json
from collections import namedtuple

__all__ = ("Chunk", "split_lines", "sse_data", "ollama_token", "openai_token", "read_chunk",
           "parse_stream", "stream_outcome")

Chunk = namedtuple("Chunk", "token done final usage error")

DONE = Chunk(None, True, None, None, None)
UNPARSABLE = Chunk(None, False, None, None, "unparsable chunk")
SERVER_FIELDS = ("eval_count", "eval_duration", "prompt_eval_count", "prompt_eval_duration", "load_duration",
                 "total_duration")


def split_lines(reads):
    """``[(t, line bytes)]`` of ``[(t, read bytes)]``: a line's time is that of the read that completed it.

    >>> split_lines([(1, b'{"a"'), (2, b': 1}\\n{"b": 2}\\n{"c"'), (3, b': 3}')])
    [(2, b'{"a": 1}'), (2, b'{"b": 2}'), (3, b'{"c": 3}')]
    """
    lines, rest = [], b""
    for t, data in reads:
        if b"\n" not in data:
            rest += data
            continue
        parts = (rest + data).split(b"\n") if rest else data.split(b"\n")
        rest = parts.pop()
        lines.extend((t, part) for part in parts)
    if rest.strip():
        lines.append((reads[-1][0], rest))
    return lines


def sse_data(line):
    """The payload of an SSE ``data:`` line (stripped), None for any other line.

    >>> sse_data(b"data: [DONE]"), sse_data(b": keep-alive"), sse_data(b"event: message")
    (b'[DONE]', None, None)
    """
    if not line.startswith(b"data:"):
        return None
    return line[5:].strip()


def ollama_token(obj, api):
    """The token an Ollama object carries (``"content"``, ``"reasoning"``, ``"tool_calls"``) or None.

    >>> ollama_token({"response": "Hi", "done": False}, "generate")
    'content'
    >>> ollama_token({"message": {"role": "assistant", "content": "", "thinking": "hm"}}, "chat")
    'reasoning'
    >>> ollama_token({"response": "", "done": True, "eval_count": 3}, "generate") is None
    True
    """
    if api == "chat":
        message = obj.get("message") or {}
        if message.get("content"):
            return "content"
        if message.get("thinking"):
            return "reasoning"
        return "tool_calls" if message.get("tool_calls") else None
    if obj.get("response"):
        return "content"
    return "reasoning" if obj.get("thinking") else None


def openai_token(obj):
    """The token an OpenAI chunk carries (``"content"``, ``"reasoning"``, ``"tool_calls"``) or None.

    >>> openai_token({"choices": [{"delta": {"role": "assistant", "content": ""}}]}) is None
    True
    >>> openai_token({"choices": [{"delta": {"reasoning_content": "so"}}]})
    'reasoning'
    >>> openai_token({"choices": [], "usage": {"completion_tokens": 5}}) is None
    True
    """
    for choice in obj.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or choice.get("text"):
            return "content"
        if delta.get("reasoning_content") or delta.get("reasoning"):
            return "reasoning"
        if delta.get("tool_calls"):
            return "tool_calls"
    return None


def read_chunk(line, api):
    """What one line of a response says (a ``Chunk``), or None when it says nothing.

    >>> read_chunk(b'data: {"choices": [{"delta": {"content": "Hi"}}]}', "openai")
    Chunk(token='content', done=False, final=None, usage=None, error=None)
    >>> read_chunk(b"data: [DONE]", "openai")
    Chunk(token=None, done=True, final=None, usage=None, error=None)
    >>> read_chunk(b'{"error": "model not found"}', "generate").error
    'server error: model not found'
    >>> read_chunk(b"", "chat") is None
    True
    """
    line = line.strip()
    if not line:
        return None
    if api == "openai":
        line = sse_data(line)
        if line is None:
            return None
        if line == b"[DONE]":
            return DONE
    try:
        obj = json.loads(line)
    except ValueError:
        return UNPARSABLE
    if not isinstance(obj, dict):
        return None
    if obj.get("error"):
        err = obj["error"]
        message = err.get("message") if isinstance(err, dict) else err
        return Chunk(None, False, None, None, "server error: %s" % (message,))
    if api == "openai":
        return Chunk(openai_token(obj), False, None, obj.get("usage") or None, None)
    done = bool(obj.get("done"))
    return Chunk(ollama_token(obj, api), done, obj if done else None, None, None)


def parse_stream(reads, api):
    """The outcome (``stream_outcome``) of one finished 200 response's timestamped reads.

    >>> reads = [(10, b'{"response": "a", "done": false}\\n{"resp'),
    ...          (25, b'onse": "b", "done": false}\\n'),
    ...          (40, b'{"response": "", "done": true, "eval_count": 2}\\n')]
    >>> outcome = parse_stream(reads, "generate")
    >>> outcome["token_times"], outcome["out_tokens"], outcome["token_source"], outcome["error"]
    ([10, 25], 2, 'eval_count', None)
    """
    token_times, final, usage, finished, error = [], None, None, False, None
    for t, line in split_lines(reads):
        chunk = read_chunk(line, api)
        if chunk is None:
            continue
        if chunk.error is not None:
            error = chunk.error
            continue
        if chunk.token is not None:
            token_times.append(t)
        if chunk.usage is not None:
            usage = chunk.usage
        if chunk.done:
            finished = True
            if chunk.final is not None:
                final = chunk.final
    return stream_outcome(token_times, final, usage, finished, error)


def stream_outcome(token_times, final, usage, finished, error):
    """``{token_times, out_tokens, in_tokens, token_source, server, error}`` of one response.

    ``out_tokens``: the server's count (Ollama ``eval_count``, OpenAI ``usage.completion_tokens``), else
    the number of token-bearing chunks; ``token_source`` says which (``eval_count|server_usage|chunks``).
    A stream that never ended (no done object, no ``[DONE]``) is an ``"incomplete stream"``.

    >>> stream_outcome([5, 7], None, None, False, None)["error"]
    'incomplete stream'
    >>> stream_outcome([5, 7], None, {"completion_tokens": 9, "prompt_tokens": 4}, True, None)["out_tokens"]
    9
    """
    if error is None and not finished:
        error = "incomplete stream"
    in_tokens = out_tokens = None
    source = "chunks"
    server = {}
    if final is not None:
        if final.get("eval_count") is not None:
            out_tokens, source = final["eval_count"], "eval_count"
        in_tokens = final.get("prompt_eval_count")
        server = {k: final.get(k) for k in SERVER_FIELDS if final.get(k) is not None}
    if usage is not None:
        if usage.get("completion_tokens") is not None:
            out_tokens, source = usage["completion_tokens"], "server_usage"
        in_tokens = usage.get("prompt_tokens", in_tokens)
    if out_tokens is None:
        out_tokens = len(token_times)
    return {"token_times": token_times, "out_tokens": out_tokens, "in_tokens": in_tokens,
            "token_source": source, "server": server, "error": error}
