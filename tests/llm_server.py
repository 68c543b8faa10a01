"""A protocol-faithful fake LLM server for the streaming clients' tests and benchmark (loopback only).

Speaks Ollama NDJSON (``POST /api/generate``, ``POST /api/chat``, ``GET /api/tags``) and OpenAI SSE
(``POST /v1/chat/completions`` with a role-only first chunk, a ``finish_reason`` chunk, a usage chunk when
``stream_options.include_usage``, then ``data: [DONE]``; ``GET /v1/models``).

Behaviour is injected per request through the model name, ``mock?ttft_ms=50&itl_ms=10&tokens=20``
(defaults from the command line):

  ttft_ms      delay from the request to the first token
  itl_ms       delay between tokens (tokens are due at ttft + k*itl from the request: no drift)
  tokens       tokens per response (``num_predict``/``max_tokens`` lower it)
  tail_ms      delay after the last token before the done object / usage chunk / [DONE]
  think        the first ``think`` tokens are reasoning (Ollama ``thinking``, OpenAI ``reasoning_content``)
  fail_every   every n-th request to this model gets HTTP 500
  stall_every  every n-th request to this model stalls ``stall_s`` seconds after its first token
  stall_s      (default 5, at most 30)

``GET /__stats`` gives the requests seen per model and the last body per path.

Run: ``python tests/llm_server.py [--port 0] [--ttft-ms ...]`` prints ``PORT <n>`` and serves on
127.0.0.1 until stdin closes, SIGTERM, or ``--lifetime`` seconds. ``running_server(**defaults)`` does
that in a subprocess for tests.
"""
import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from urllib.parse import parse_qsl

from aiohttp import web

DEFAULTS = {"ttft_ms": 0.0, "itl_ms": 0.0, "tokens": 20, "tail_ms": 0.0, "think": 0,
            "fail_every": 0, "stall_every": 0, "stall_s": 5.0}
MAX_STALL_S = 30.0


def behaviour(model, defaults):
    config = dict(defaults)
    if "?" in model:
        for key, value in parse_qsl(model.split("?", 1)[1]):
            if key in config:
                config[key] = type(DEFAULTS[key])(value)
    config["stall_s"] = min(config["stall_s"], MAX_STALL_S)
    return config


async def until(loop, due):
    """Sleep until ``due`` (loop time). epoll rounds a timeout up to whole ms, so a wake-up is 0-1 ms
    late, plus wake-up latency: aim 1 ms early (measured on loopback). Always yields at least once."""
    delay = due - loop.time() - 0.001
    await asyncio.sleep(delay if delay > 0 else 0)


class Server:
    def __init__(self, defaults):
        self.defaults = defaults
        self.counters = {}
        self.app = web.Application()
        self.app.router.add_post("/api/generate", self.ollama)
        self.app.router.add_post("/api/chat", self.ollama)
        self.app.router.add_get("/api/tags", self.tags)
        self.app.router.add_post("/v1/chat/completions", self.openai)
        self.app.router.add_get("/v1/models", self.models)
        self.app.router.add_get("/__stats", self.stats)
        self.last_body = {}

    async def stats(self, request):
        """Requests seen per model, and the last body per path (for the tests)."""
        return web.json_response({"requests": self.counters, "last_body": self.last_body})

    async def tags(self, request):
        return web.json_response({"models": [{"name": "mock", "model": "mock", "size": 0, "digest": "0" * 64}]})

    async def models(self, request):
        return web.json_response({"object": "list", "data": [{"id": "mock", "object": "model", "owned_by": "test"}]})

    def prepare(self, body):
        model = body.get("model") or "mock"
        config = behaviour(model, self.defaults)
        n = self.counters[model] = self.counters.get(model, 0) + 1
        return model, config, n

    async def tokens(self, config, limit, start):
        """Yield (index, is_thinking) when each token is due."""
        loop = asyncio.get_running_loop()
        count = min(config["tokens"], limit) if limit else config["tokens"]
        for k in range(count):
            await until(loop, start + (config["ttft_ms"] + k * config["itl_ms"]) / 1000.0)
            yield k, k < config["think"]

    async def tail(self, config, start, count):
        loop = asyncio.get_running_loop()
        await until(loop, start + (config["ttft_ms"] + max(count - 1, 0) * config["itl_ms"] + config["tail_ms"]) / 1000.0)

    async def ollama(self, request):
        try:
            return await self._ollama(request)
        except (ConnectionError, asyncio.CancelledError):
            raise web.HTTPBadRequest()  # the client went away (timeout, SIGTERM): nothing to report

    async def openai(self, request):
        try:
            return await self._openai(request)
        except (ConnectionError, asyncio.CancelledError):
            raise web.HTTPBadRequest()

    async def _begin(self, request):
        """What both APIs do first: the clocks, the body (kept for the tests), the model's settings."""
        start = asyncio.get_running_loop().time()
        entered = time.perf_counter_ns()
        body = await request.json()
        self.last_body[request.path] = body
        return (start, entered, body) + tuple(self.prepare(body))

    async def _ollama(self, request):
        start, entered, body, model, config, n = await self._begin(request)
        if config["fail_every"] and n % config["fail_every"] == 0:
            return web.json_response({"error": "injected failure"}, status=500)
        chat = request.path == "/api/chat"
        limit = (body.get("options") or {}).get("num_predict")
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson",
                                                "X-Server-Start-Ns": str(entered)})
        await response.prepare(request)
        t0 = time.perf_counter_ns()
        count = 0
        async for k, thinking in self.tokens(config, limit, start):
            text = " tok%d" % k
            if chat:
                message = {"role": "assistant", "content": "" if thinking else text}
                if thinking:
                    message["thinking"] = text
                obj = {"model": model, "created_at": "2024-01-01T00:00:00Z", "message": message, "done": False}
            else:
                obj = {"model": model, "created_at": "2024-01-01T00:00:00Z", "response": "" if thinking else text,
                       "done": False}
                if thinking:
                    obj["thinking"] = text
            await response.write(json.dumps(obj).encode() + b"\n")
            count += 1
            if k == 0 and config["stall_every"] and n % config["stall_every"] == 0:
                await asyncio.sleep(config["stall_s"])
        await self.tail(config, start, count)
        eval_ns = time.perf_counter_ns() - t0
        final = {"model": model, "created_at": "2024-01-01T00:00:00Z", "done": True, "done_reason": "length",
                 "total_duration": eval_ns + 1000, "load_duration": 1000, "prompt_eval_count": 7,
                 "prompt_eval_duration": 7000, "eval_count": count, "eval_duration": max(eval_ns, 1)}
        if chat:
            final["message"] = {"role": "assistant", "content": ""}
        else:
            final["response"] = ""
            final["context"] = [1, 2, 3]
        await response.write(json.dumps(final).encode() + b"\n")
        await response.write_eof()
        return response

    async def _openai(self, request):
        start, entered, body, model, config, n = await self._begin(request)
        if config["fail_every"] and n % config["fail_every"] == 0:
            return web.json_response({"error": {"message": "injected failure", "type": "server_error"}}, status=500)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                                "X-Server-Start-Ns": str(entered)})
        await response.prepare(request)
        head = {"id": "chatcmpl-%d" % n, "object": "chat.completion.chunk", "created": 1700000000, "model": model}

        def event(choices, **extra):
            return b"data: " + json.dumps(dict(head, choices=choices, **extra)).encode() + b"\n\n"

        # the role-only first chunk, sent at once: it is not a token
        await response.write(event([{"index": 0, "delta": {"role": "assistant", "content": ""},
                                     "logprobs": None, "finish_reason": None}]))
        count = 0
        async for k, thinking in self.tokens(config, body.get("max_tokens") or body.get("max_completion_tokens"),
                                             start):
            delta = {"reasoning_content": " tok%d" % k} if thinking else {"content": " tok%d" % k}
            await response.write(event([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]))
            count += 1
            if k == 0 and config["stall_every"] and n % config["stall_every"] == 0:
                await asyncio.sleep(config["stall_s"])
        await self.tail(config, start, count)
        await response.write(event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}]))
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(event([], usage={"prompt_tokens": 7, "completion_tokens": count,
                                                  "total_tokens": 7 + count}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


async def serve(port, defaults, lifetime, ready):
    runner = web.AppRunner(Server(defaults).app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    ready(site._server.sockets[0].getsockname()[1])
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    def stdin_readable():
        if not os.read(sys.stdin.fileno(), 4096):  # EOF: the parent is gone or done
            loop.remove_reader(sys.stdin.fileno())
            done.set()

    with contextlib.suppress(NotImplementedError, ValueError, OSError):
        loop.add_reader(sys.stdin.fileno(), stdin_readable)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(done.wait(), lifetime)
    await runner.cleanup()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--lifetime", type=float, default=600.0)
    for key, value in DEFAULTS.items():
        p.add_argument("--" + key.replace("_", "-"), type=type(value), default=value)
    args = p.parse_args(argv)
    defaults = {key: getattr(args, key) for key in DEFAULTS}

    def ready(port):
        print("PORT %d" % port, flush=True)

    asyncio.run(serve(args.port, defaults, args.lifetime, ready))


@contextlib.contextmanager
def running_server(lifetime=300, cpu=None, **defaults):
    """``python tests/llm_server.py`` in a subprocess (optionally pinned to one CPU): yields its port."""
    argv = [sys.executable, os.path.abspath(__file__), "--port", "0", "--lifetime", str(lifetime)]
    for key, value in defaults.items():
        argv += ["--" + key.replace("_", "-"), str(value)]
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        argv = ["taskset", "-c", str(cpu)] + argv
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError("llm_server did not start: %r" % line)
        yield int(line.split()[1])
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()


if __name__ == "__main__":
    main()
