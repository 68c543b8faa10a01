"""LLM streaming load generator: Ollama (``/api/generate``, ``/api/chat``) and OpenAI-compatible servers.

Run as ``python -m orch.clients.ollama_benchmark --host H --port P --duration D --output PATH
[--model M --num-requests N --concurrency C --prompt-length L --max-tokens T --api generate|chat|openai
--seed S --request-rate R --arrival poisson|constant --prompts-file F --warmup W --timeout S]``.
``orch.clients.llm_benchmark`` is the same client with ``--api openai`` by default (vLLM, llama.cpp, ...).

Load
  * closed loop (no ``--request-rate``): ``--concurrency`` workers issue requests back to back until
    ``--num-requests`` have been issued or ``--duration`` seconds have passed, whichever comes first;
    requests in flight then get ``--grace`` seconds to finish before they are cancelled (counted as
    ``cancelled``, not as failures). ``t_intended`` = ``t_send`` (a closed loop has no schedule).
  * open loop (``--request-rate R``): ``--num-requests`` arrival times are precomputed from a seeded RNG
    (exponential gaps = Poisson, or constant), the gaps rescaled so the schedule's rate is exactly R
    (vLLM ``vllm bench serve`` does the same); arrivals past ``--duration`` are dropped. ``--concurrency``
    is then an optional cap (a semaphore); time waiting for it counts as send lag and in ``e2el_intended``.
  * prompts: ``--prompts-file`` (one prompt per line; a JSONL line may be ``{"prompt": ...}`` or a JSON
    string), else synthetic prompts of ``--prompt-length`` *words* drawn with the seed (tokens are
    approximated by words; nothing is tokenized). At most 1024 distinct prompts are built before the run
    and reused in turn. ``--max-tokens`` -> Ollama ``options.num_predict`` / OpenAI ``max_tokens``;
    ``--seed`` -> Ollama ``options.seed`` / OpenAI ``seed``.
  * ``--warmup W`` requests are made first and excluded from every figure (kept in the JSONL, marked).

Clock and timestamps: ``time.perf_counter_ns`` only, one clock per process. While streaming, the client
only appends ``(arrival time, bytes)`` per socket read; lines are split and parsed after the response ends.
A line's arrival time is that of the read that completed it. Finished responses are parsed by one
background task, one response per event-loop iteration, so that parsing never delays other streams' reads. Per request:
``t_intended`` (scheduled send), ``t_send`` (just before the request is written), ``t_first_byte``
(response headers), ``t_first_token`` (first chunk with non-empty content *or* reasoning/thinking;
a role-only chunk never counts), ``t_last_token`` (last token-bearing chunk; never the ``[DONE]``, usage
or ``done: true`` object), ``t_end`` (response fully read), ``status``, ``error``, ``out_tokens``.

Metric definitions (MEASUREMENT.md section 1, the definitions orch adopts):
  * ``ttft``  = t_first_token - t_send                     (AIPerf TTFT: role-only/empty chunks skipped)
  * ``e2el``  = t_last_token - t_send                      (vLLM E2EL; ends at the last token chunk)
  * ``tpot``  = (e2el - ttft) / (out_tokens - 1), null if out_tokens <= 1
                                                            (vLLM TPOT = AIPerf ITL = GuideLLM ITL)
  * ``icl``   = every gap between consecutive token-bearing chunks (vLLM "ITL", AIPerf ICL)
  * ``e2el_intended`` = t_last_token - t_intended           (vLLM queue-inclusive E2EL; open loop)
  * ``out_tokens`` = server count (Ollama ``eval_count``, OpenAI ``usage.completion_tokens``); fallback:
    number of token-bearing chunks; ``token_source`` records which (``eval_count|server_usage|chunks``).
  * window = first ``t_send`` .. last ``t_end`` of a finished measured request;
    ``requests_per_s`` = completed / window; ``output_tokens_per_s`` = sum(out_tokens of completed) / window.
  * Ollama server side (``domain.server_reported.ollama``): prefill_tok_s = sum(prompt_eval_count) /
    sum(prompt_eval_duration), decode_tok_s = sum(eval_count) / sum(eval_duration) (per-request rates
    pooled: not the server's aggregate throughput under concurrency); load_ms_total/first/max.
  * fidelity (``domain.fidelity``): offered_rps = R; achieved_rps = (sent - 1) / (last t_send - first
    t_send); send lag = t_send - t_intended; ``degraded`` when p99 send lag > 10 ms or achieved < 95 %
    of offered (open loop only).
Summaries: ``orch.results.summary`` (linear percentiles, numpy's default) over the raw samples, in ms.

Counts: ``sent`` = requests started; ``completed`` = HTTP 200 and a complete stream; ``failed`` = every
other finished request (HTTP errors, stream errors, connection errors, timeouts); ``timeouts`` = those that
hit ``--timeout`` (a subset of failed); ``cancelled`` = in flight when the run stopped; ``errors`` =
``{message: n}``. Per-request records go to ``<output minus .json>.requests.jsonl`` (named in
``raw.requests``), times in ms from the run's origin (``domain.clock.origin_epoch``).

SIGTERM/SIGINT: stop issuing, cancel what is in flight, write the document with ``run.partial = true``
and exit 143. Normal end: ``partial = false``, exit 0; exit 1 when every measured request failed.
"""
import argparse
import asyncio
import collections
import json
import os
import random
import signal
import sys
import time
from time import perf_counter_ns

import aiohttp

from orch import results

__all__ = ("main", "parse_args", "WORDS")

SEND_LAG_LIMIT_MS = 10.0
ACHIEVED_FRACTION = 0.95
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


# ---------------------------------------------------------------- arguments

def parse_args(argv, default_api="generate"):
    p = argparse.ArgumentParser(prog="orch.clients.ollama_benchmark", description=__doc__.split("\n")[0])
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--duration", type=float, default=60.0, help="stop issuing after this many seconds")
    p.add_argument("--output", required=True)
    p.add_argument("--model", default=None, help="default: the server's first model (/api/tags or /v1/models)")
    p.add_argument("--num-requests", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=None, help="closed loop: workers (default 1); open loop: cap")
    p.add_argument("--request-rate", type=float, default=None, help="open loop: requests per second")
    p.add_argument("--arrival", choices=("poisson", "constant"), default="poisson")
    p.add_argument("--prompt-length", type=int, default=128, help="synthetic prompt length in words")
    p.add_argument("--prompts-file", default=None)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--api", choices=("generate", "chat", "openai"), default=default_api)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--warmup", type=int, default=0, help="requests made first and excluded from the figures")
    p.add_argument("--timeout", type=float, default=300.0, help="per-request timeout, seconds")
    p.add_argument("--grace", type=float, default=30.0, help="seconds in-flight requests get after --duration")
    p.add_argument("--scheme", choices=("http", "https"), default="http")
    args = p.parse_args(argv)
    for name in ("num_requests", "prompt_length", "max_tokens"):
        if getattr(args, name) < 1:
            p.error("--%s must be at least 1" % name.replace("_", "-"))
    if args.concurrency is not None and args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    if args.request_rate is not None and args.request_rate <= 0:
        p.error("--request-rate must be positive")
    if args.warmup < 0 or args.timeout <= 0 or args.duration <= 0:
        p.error("--warmup must be >= 0, --timeout and --duration > 0")
    return args


# ---------------------------------------------------------------- workload (all built before the run)

def synthetic_prompts(count, length, seed):
    rng = random.Random(0 if seed is None else seed)
    return [" ".join(rng.choices(WORDS, k=length)) for _ in range(count)]


def read_prompts(path):
    prompts = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
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
                    raise ValueError("%s: a JSONL line needs a \"prompt\" string" % path)
                line = value
            prompts.append(line)
    if not prompts:
        raise ValueError("%s: no prompts" % path)
    return prompts


def request_body(api, model, prompt, max_tokens, seed):
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


# ---------------------------------------------------------------- one request

class Request:
    __slots__ = ("i", "warmup", "t_intended", "t_send", "t_first_byte", "t_end", "status", "error",
                 "timeout", "cancelled", "reads", "done")

    def __init__(self, i, warmup, t_intended):
        self.i, self.warmup, self.t_intended = i, warmup, t_intended
        self.t_send = self.t_first_byte = self.t_end = None
        self.status = self.error = None
        self.timeout = self.cancelled = False
        self.reads = []
        self.done = None  # the parsed outcome (see parse_stream)


async def perform(session, url, body, record, timeout):
    """Send one request and keep every read with its arrival time; never raises but CancelledError."""
    reads = record.reads
    try:
        record.t_send = perf_counter_ns()
        async with session.post(url, data=body, headers={"Content-Type": "application/json"},
                                timeout=timeout) as response:
            record.t_first_byte = perf_counter_ns()
            record.status = response.status
            if response.status != 200:
                text = (await response.read())[:200].decode("utf-8", "replace").strip()
                record.error = "HTTP %d%s" % (response.status, (": " + text) if text and len(text) < 80 else "")
            else:
                append = reads.append
                async for data in response.content.iter_any():
                    append((perf_counter_ns(), data))
        record.t_end = perf_counter_ns()
    except asyncio.CancelledError:
        record.cancelled = True
        record.t_end = perf_counter_ns()
        raise
    except asyncio.TimeoutError:
        record.t_end = perf_counter_ns()
        record.timeout = True
        record.error = "timeout"
    except aiohttp.ClientError as error:
        record.t_end = perf_counter_ns()
        record.error = type(error).__name__ + (": %s" % error if str(error) else "")
    except OSError as error:
        record.t_end = perf_counter_ns()
        record.error = "%s: %s" % (type(error).__name__, error.strerror or error)


def split_lines(reads):
    """``[(t, line bytes)]``: a line's time is that of the read that completed it."""
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


def _ollama_token(obj, api):
    if api == "chat":
        message = obj.get("message") or {}
        return bool(message.get("content") or message.get("thinking") or message.get("tool_calls"))
    return bool(obj.get("response") or obj.get("thinking"))


def _openai_token(obj):
    for choice in obj.get("choices") or ():
        delta = choice.get("delta") or {}
        if (delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning")
                or delta.get("tool_calls") or choice.get("text")):
            return True
    return False


def parse_stream(record, api):
    """Token chunk times, token count and server figures of one finished 200 response."""
    token_times, final, usage, finished, error = [], None, None, False, None
    for t, line in split_lines(record.reads):
        line = line.strip()
        if not line:
            continue
        if api == "openai":
            if not line.startswith(b"data:"):
                continue  # event:, id:, retry:, ": comment"
            line = line[5:].strip()
            if line == b"[DONE]":
                finished = True
                continue
        try:
            obj = json.loads(line)
        except ValueError:
            error = "unparsable chunk"
            continue
        if not isinstance(obj, dict):
            continue
        if obj.get("error"):
            err = obj["error"]
            error = "server error: %s" % (err.get("message") if isinstance(err, dict) else err)
            continue
        if api == "openai":
            if _openai_token(obj):
                token_times.append(t)
            if obj.get("usage"):
                usage = obj["usage"]
        else:
            if _ollama_token(obj, api):
                token_times.append(t)
            if obj.get("done"):
                final, finished = obj, True
    record.reads = None  # free the bytes
    if error is None and not finished:
        error = "incomplete stream"
    in_tokens = out_tokens = None
    source = "chunks"
    server = {}
    if final is not None:
        if final.get("eval_count") is not None:
            out_tokens, source = final["eval_count"], "eval_count"
        in_tokens = final.get("prompt_eval_count")
        server = {k: final.get(k) for k in ("eval_count", "eval_duration", "prompt_eval_count",
                                              "prompt_eval_duration", "load_duration", "total_duration")
                  if final.get(k) is not None}
    if usage is not None:
        if usage.get("completion_tokens") is not None:
            out_tokens, source = usage["completion_tokens"], "server_usage"
        in_tokens = usage.get("prompt_tokens", in_tokens)
    if out_tokens is None:
        out_tokens = len(token_times)
    return {"token_times": token_times, "out_tokens": out_tokens, "in_tokens": in_tokens,
            "token_source": source, "server": server, "error": error}


# ---------------------------------------------------------------- the run

class Run:
    def __init__(self, args, model, bodies, url):
        self.args, self.model, self.bodies, self.url = args, model, bodies, url
        self.records = []
        self.stopping = asyncio.Event()
        self.interrupted = False
        self.tasks = set()
        self.timeout = aiohttp.ClientTimeout(total=args.timeout)
        self.unparsed = collections.deque()
        self.parse_ready = asyncio.Event()

    def new_record(self, i, warmup, t_intended=None):
        record = Request(i, warmup, t_intended)
        self.records.append(record)
        return record

    async def one(self, session, record):
        body = self.bodies[record.i % len(self.bodies)]
        try:
            await perform(session, self.url, body, record, self.timeout)
        finally:
            if record.t_intended is None:
                record.t_intended = record.t_send
            if record.status == 200 and record.error is None and not record.cancelled:
                self.unparsed.append(record)  # parsed off the hot path (see parser)
                self.parse_ready.set()
            else:
                record.reads = None

    def parse(self, record):
        outcome = parse_stream(record, self.args.api)
        record.error = outcome["error"]
        record.done = outcome

    async def parser(self):
        """Parse finished responses one per loop iteration, so a burst of completions never holds up
        the reads (and so the timestamps) of the streams still running."""
        while True:
            await self.parse_ready.wait()
            self.parse_ready.clear()
            while self.unparsed:
                self.parse(self.unparsed.popleft())
                await asyncio.sleep(0)

    def parse_rest(self):
        while self.unparsed:
            self.parse(self.unparsed.popleft())

    async def warmup(self, session):
        count = self.args.warmup
        if not count:
            return
        width = min(count, self.args.concurrency or 1)
        queue = iter(range(count))

        async def worker():
            for i in queue:
                if self.stopping.is_set():
                    return
                await self.one(session, self.new_record(i, True))

        await asyncio.gather(*(worker() for _ in range(width)))

    async def closed_loop(self, session, deadline):
        n = self.args.num_requests
        counter = iter(range(n))
        warm = self.args.warmup

        async def worker():
            for i in counter:
                if self.stopping.is_set() or perf_counter_ns() >= deadline:
                    return
                await self.one(session, self.new_record(warm + i, False))

        await asyncio.gather(*(worker() for _ in range(self.args.concurrency or 1)))

    async def open_loop(self, session, start, deadline):
        args = self.args
        offsets = arrival_offsets_ns(args.num_requests, args.request_rate, args.arrival, args.seed)
        cap = asyncio.Semaphore(args.concurrency) if args.concurrency else None
        loop = asyncio.get_running_loop()
        pending = set()

        async def capped(record):
            async with cap:
                await self.one(session, record)

        try:
            for i, offset in enumerate(offsets):
                intended = start + offset
                if intended >= deadline:
                    break
                delay = (intended - perf_counter_ns()) / 1e9
                if delay > 0:
                    await asyncio.sleep(delay)
                if self.stopping.is_set():
                    break
                record = self.new_record(args.warmup + i, False, intended)
                task = loop.create_task(capped(record) if cap else self.one(session, record))
                pending.add(task)
                task.add_done_callback(pending.discard)
            while pending:
                await asyncio.wait(list(pending))
        finally:
            for task in list(pending):
                task.cancel()
            if pending:
                await asyncio.gather(*list(pending), return_exceptions=True)

    async def main(self):
        args = self.args
        # one connector for the run, never fewer connections than requests allowed in flight
        if args.concurrency:
            limit = args.concurrency
        else:
            limit = 1 if args.request_rate is None else 0  # open loop without a cap: unlimited
        connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=None)
        parser = asyncio.ensure_future(self.parser())
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                         skip_auto_headers=("User-Agent",)) as session:
            if args.warmup:
                await self.until_stopped(self.warmup(session), None)
            self.origin = perf_counter_ns()
            self.origin_epoch = time.time()
            deadline = self.origin + int(args.duration * 1e9)
            if args.request_rate is None:
                load = self.closed_loop(session, deadline)
            else:
                load = self.open_loop(session, self.origin, deadline)
            grace = (deadline - perf_counter_ns()) / 1e9 + args.grace
            await self.until_stopped(load, max(grace, 0))
        parser.cancel()
        await asyncio.gather(parser, return_exceptions=True)
        self.parse_rest()
        # a request cancelled before its first write was never sent
        self.records = [r for r in self.records if r.t_send is not None]

    async def until_stopped(self, coroutine, timeout):
        """Run ``coroutine`` until it ends, the run is stopped, or ``timeout`` s pass; then cancel it."""
        if self.stopping.is_set():
            coroutine.close()
            return
        work = asyncio.ensure_future(coroutine)
        stop = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait({work, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in (work, stop):
            task.cancel()
        await asyncio.gather(work, stop, return_exceptions=True)

    def stop(self):
        self.interrupted = True
        self.stopping.set()


async def discover_model(args, base):
    """The server's first model when none is given (None when the server lists none)."""
    path = "/v1/models" if args.api == "openai" else "/api/tags"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(base + path, timeout=aiohttp.ClientTimeout(total=min(args.timeout, 30))) as r:
                data = await r.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, OSError):
        return None
    items = data.get("data" if args.api == "openai" else "models") or []
    if not items:
        return None
    return items[0].get("id") if args.api == "openai" else (items[0].get("name") or items[0].get("model"))


async def run(args):
    base = "%s://%s:%d" % (args.scheme, args.host, args.port)
    url = base + ("/v1/chat/completions" if args.api == "openai" else "/api/" + args.api)
    loop = asyncio.get_running_loop()
    model = args.model or await discover_model(args, base) or "default"
    if args.prompts_file:
        prompts = read_prompts(args.prompts_file)
    else:
        prompts = synthetic_prompts(min(args.num_requests + args.warmup, MAX_DISTINCT_PROMPTS),
                                    args.prompt_length, args.seed)
    bodies = [request_body(args.api, model, p, args.max_tokens, args.seed) for p in prompts]
    state = Run(args, model, bodies, url)
    state.prompt_words = [len(p.split()) for p in prompts]
    state.base = base
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, state.stop)
    try:
        await state.main()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return state


# ---------------------------------------------------------------- figures

def _ms(ns):
    return ns / 1e6


def request_line(record, origin):
    def rel(t):
        return None if t is None else round((t - origin) / 1e6, 4)

    outcome = record.done or {}
    times = outcome.get("token_times") or []
    status = "cancelled" if record.cancelled else ("timeout" if record.timeout else
                                                   ("ok" if record.error is None and record.status == 200 else "error"))
    return {
        "i": record.i, "warmup": record.warmup,
        "t_intended": rel(record.t_intended), "t_send": rel(record.t_send), "t_first_byte": rel(record.t_first_byte),
        "t_first_token": rel(times[0]) if times else None, "t_last_token": rel(times[-1]) if times else None,
        "t_end": rel(record.t_end), "http_status": record.status, "status": status, "error": record.error,
        "in_tokens": outcome.get("in_tokens"), "out_tokens": outcome.get("out_tokens"),
        "token_source": outcome.get("token_source"),
        "chunk_offsets_ms": [round((t - record.t_send) / 1e6, 4) for t in times],
        "server": outcome.get("server") or {},
    }


def build_document(state, args, argv, client_name):
    from orch import __version__

    parameters = {k: v for k, v in vars(args).items() if k not in ("host", "port", "output")}
    parameters["model"] = state.model
    doc = results.new_document(
        client_name, parameters,
        {"kind": "openai" if args.api == "openai" else "ollama", "url": state.url, "host": args.host,
         "port": args.port},
        tool="orch", tool_version=__version__, command=[sys.executable, "-m", "orch.clients." + client_name] + list(argv),
    )
    origin = getattr(state, "origin", None)
    measured = [r for r in state.records if not r.warmup]
    finished = [r for r in measured if not r.cancelled]
    ok = [r for r in finished if r.error is None and r.status == 200]
    failed = [r for r in finished if not (r.error is None and r.status == 200)]
    errors = {}
    for r in failed:
        errors[r.error or "error"] = errors.get(r.error or "error", 0) + 1
    doc["counts"] = {"sent": len(measured), "completed": len(ok), "failed": len(failed),
                     "timeouts": sum(1 for r in failed if r.timeout), "errors": errors,
                     "cancelled": len(measured) - len(finished)}

    ttft, tpot, icl, e2el, e2el_intended, lag = [], [], [], [], [], []
    tokens_total = 0
    sources = {}
    for r in ok:
        o = r.done
        times = o["token_times"]
        out = o["out_tokens"] or 0
        tokens_total += out
        sources[o["token_source"]] = sources.get(o["token_source"], 0) + 1
        if not times:
            continue
        first, last = times[0] - r.t_send, times[-1] - r.t_send
        ttft.append(_ms(first))
        e2el.append(_ms(last))
        e2el_intended.append(_ms(times[-1] - r.t_intended))
        if out > 1:
            tpot.append(_ms(last - first) / (out - 1))
        icl.extend(_ms(b - a) for a, b in zip(times, times[1:]))
    for r in measured:
        lag.append(_ms(r.t_send - r.t_intended))
    doc["latency"] = {"ttft_ms": results.summary(ttft), "tpot_ms": results.summary(tpot),
                      "icl_ms": results.summary(icl), "e2el_ms": results.summary(e2el),
                      "e2el_intended_ms": results.summary(e2el_intended)}

    window = None
    if measured and finished:
        start = min(r.t_send for r in measured)
        end = max(r.t_end for r in finished)
        window = max(end - start, 1) / 1e9
        doc["window"].update(start_epoch=state.origin_epoch + (start - origin) / 1e9,
                             end_epoch=state.origin_epoch + (end - origin) / 1e9, duration_s=window)
    doc["throughput"] = {
        "requests_per_s": len(ok) / window if window else None,
        "output_tokens_per_s": tokens_total / window if window else None,
        "goodput_rps": None,
    }

    open_loop = args.request_rate is not None
    sends = sorted(r.t_send for r in measured)
    achieved = (len(sends) - 1) / ((sends[-1] - sends[0]) / 1e9) if len(sends) > 1 and sends[-1] > sends[0] else None
    lag_summary = results.summary(lag) if open_loop else None
    reasons = []
    if open_loop and lag_summary and lag_summary["p99"] > SEND_LAG_LIMIT_MS:
        reasons.append("p99 send lag %.1f ms > %.0f ms" % (lag_summary["p99"], SEND_LAG_LIMIT_MS))
    if open_loop and achieved is not None and achieved < ACHIEVED_FRACTION * args.request_rate:
        reasons.append("achieved %.2f rps < %d %% of offered %.2f" % (achieved, ACHIEVED_FRACTION * 100, args.request_rate))

    server_reported = None
    if args.api != "openai":
        servers = [r.done["server"] for r in ok if r.done["server"]]

        def total(key):
            return sum(s.get(key) or 0 for s in servers)

        loads = [s["load_duration"] / 1e6 for s in
                 (r.done["server"] for r in sorted(ok, key=lambda r: r.t_send)) if s.get("load_duration") is not None]
        server_reported = {"ollama": {
            "definition": "prefill = sum(prompt_eval_count)/sum(prompt_eval_duration); decode = sum(eval_count)/"
                          "sum(eval_duration); pooled per-request rates, not aggregate server throughput",
            "prefill_tok_s": total("prompt_eval_count") / (total("prompt_eval_duration") / 1e9)
            if total("prompt_eval_duration") else None,
            "decode_tok_s": total("eval_count") / (total("eval_duration") / 1e9) if total("eval_duration") else None,
            "load_ms_total": sum(loads) if loads else None,
            "load_ms_first": loads[0] if loads else None,
            "load_ms_max": max(loads) if loads else None,
            "responses": len(servers),
        }}

    doc["domain"] = {
        "api": args.api,
        "model": state.model,
        "workload": {
            "loop": "open" if open_loop else "closed",
            "arrival": args.arrival if open_loop else None,
            "target_rps": args.request_rate,
            "concurrency": args.concurrency or (None if open_loop else 1),
            "warmup": {"requests": args.warmup, "excluded": True},
            "prompts": {"source": args.prompts_file or "synthetic", "distinct": len(state.bodies),
                        "length_unit": "words (tokens approximated by whitespace-separated words; not tokenized)",
                        "length_words": results.summary(state.prompt_words)},
            "max_tokens": args.max_tokens,
        },
        "tokens": {"source": (max(sources, key=sources.get) if sources else None), "sources": sources,
                   "output_total": tokens_total},
        "fidelity": {
            "offered_rps": args.request_rate,
            "achieved_rps": achieved,
            "achieved_definition": "(sent-1)/(last t_send - first t_send)",
            "send_lag_ms": lag_summary,
            "degraded": bool(reasons),
            "reasons": reasons,
        },
        "server_reported": server_reported,
        "clock": {"source": "time.perf_counter_ns", "origin_epoch": getattr(state, "origin_epoch", None)},
        "definitions": {
            "ttft": "first chunk with non-empty content or reasoning - t_send (role-only chunks skipped)",
            "e2el": "last token-bearing chunk - t_send (not [DONE]/usage/done object)",
            "tpot": "(e2el - ttft)/(out_tokens - 1), null if out_tokens <= 1 (vLLM TPOT = AIPerf ITL)",
            "icl": "every gap between consecutive token-bearing chunks (vLLM ITL, AIPerf ICL)",
            "e2el_intended": "last token-bearing chunk - intended send time",
            "window": "first t_send .. last t_end of finished measured requests",
        },
    }
    return doc


def requests_path(output):
    stem = output[:-5] if output.endswith(".json") else output
    return stem + ".requests.jsonl"


def write_requests(path, records, origin):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    with open(tmp, "w", encoding="utf-8") as handle:
        for record in sorted(records, key=lambda r: (r.t_send or 0, r.i)):
            handle.write(json.dumps(request_line(record, origin), separators=(",", ":")))
            handle.write("\n")
    os.replace(tmp, path)


def main(argv=None, client_name="ollama_benchmark", default_api="generate"):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv, default_api)
    state = asyncio.run(run(args))
    if not hasattr(state, "origin"):  # stopped during warm-up
        state.origin, state.origin_epoch = perf_counter_ns(), time.time()
    document = build_document(state, args, argv, client_name)
    path = requests_path(args.output)
    write_requests(path, state.records, state.origin)
    document["raw"]["requests"] = os.path.basename(path)
    document["run"]["partial"] = state.interrupted
    document["run"]["ended_at"] = results.now_iso()
    results.write_document(args.output, document)
    counts = document["counts"]
    print("%s: %d sent, %d completed, %d failed (%d timeouts)%s -> %s" % (
        client_name, counts["sent"], counts["completed"], counts["failed"], counts["timeouts"],
        ", interrupted" if state.interrupted else "", args.output), file=sys.stderr)
    if state.interrupted:
        return 143
    if counts["sent"] and counts["completed"] == 0:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
