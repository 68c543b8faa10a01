"""LLM streaming load generator: Ollama (``/api/generate``, ``/api/chat``) and OpenAI-compatible servers.

Run as ``python -m orch.clients.ollama_benchmark --host H --port P --duration D --output PATH
[--model M --num-requests N --concurrency C --prompt-length L --max-tokens T --api generate|chat|openai
--seed S --request-rate R --arrival poisson|constant --prompts-file F | --prompt TEXT... --warmup W --timeout S]``.
``orch.clients.llm_benchmark`` is the same client with ``--api openai`` by default (vLLM, llama.cpp, ...).

This module is the client's effectful part: the asyncio/aiohttp driver and ``main``. What it sends and
when is built before the run (``orch.clients.llm_workload``), the streams are read after each response
(``orch.clients.llm_streams``) and the document comes from the raw samples
(``orch.clients.llm_results``, where every metric is defined); all three are pure.

Load
  * closed loop (no ``--request-rate``): ``--concurrency`` workers issue requests back to back until
    ``--num-requests`` have been issued or ``--duration`` seconds have passed, whichever comes first;
    requests in flight then get ``--grace`` seconds to finish before they are cancelled (counted as
    ``cancelled``, not as failures). ``t_intended`` = ``t_send`` (a closed loop has no schedule).
  * open loop (``--request-rate R``): ``--num-requests`` arrival times are precomputed from a seeded RNG
    (exponential gaps = Poisson, or constant), the gaps rescaled so the schedule's rate is exactly R
    (vLLM ``vllm bench serve`` does the same); arrivals past ``--duration`` are dropped. ``--concurrency``
    is then an optional cap (a semaphore); time waiting for it counts as send lag and in ``e2el_intended``.
  * prompts: ``--prompt TEXT`` (each one given, in turn; a recipe's ``prompts``), or ``--prompts-file``
    (one prompt per line; a JSONL line may be ``{"prompt": ...}`` or a JSON string), else synthetic prompts of ``--prompt-length`` *words* drawn with the seed (tokens are
    approximated by words; nothing is tokenized). At most 1024 distinct prompts are built before the run
    and reused in turn. ``--max-tokens`` -> Ollama ``options.num_predict`` / OpenAI ``max_tokens``;
    ``--seed`` -> Ollama ``options.seed`` / OpenAI ``seed``.
  * ``--warmup W`` requests are made first and excluded from every figure (kept in the JSONL, marked).

Clock and timestamps: ``time.perf_counter_ns`` only, one clock per process. While streaming, the client
only appends ``(arrival time, bytes)`` per socket read (``perform``); lines are split and parsed after the
response ends. A line's arrival time is that of the read that completed it. Finished responses are
parsed by one background task, one response per event-loop iteration, so that parsing never delays
other streams' reads. Per request: ``t_intended`` (scheduled send), ``t_send`` (just before the request
is written), ``t_first_byte`` (response headers), ``t_end`` (response fully read); the token times are
those of the reads.

Per-request records go to ``<output minus .json>.requests.jsonl`` (named in ``raw.requests``), times in
ms from the run's origin (``domain.clock.origin_epoch``).

SIGTERM/SIGINT: stop issuing, cancel what is in flight, write the document with ``run.partial = true``
and exit 143. Normal end: ``partial = false``, exit 0; exit 1 when every measured request failed.
"""
import argparse
import asyncio
import collections
import os
import signal
import sys
import time
from time import perf_counter_ns

import aiohttp

from orch import results
from orch.clients.llm_results import Request, build_document, request_lines, requests_path
from orch.clients.llm_streams import parse_stream
from orch.clients.llm_workload import (MAX_DISTINCT_PROMPTS, WORDS, api_path, arrival_offsets_ns, first_model,
                                       models_path, parse_prompts, request_body, synthetic_prompts)
from orch.clients.node import started_now, this_job, write_document
from orch.effects.files import write_atomically

__all__ = ("main", "parse_args", "WORDS")


# ---------------------------------------------------------------- arguments and prompts

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
    given = p.add_mutually_exclusive_group()
    given.add_argument("--prompts-file", default=None)
    given.add_argument("--prompt", action="append", default=None, help="a prompt (repeat for several, used in turn)")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--api", choices=("generate", "chat", "openai"), default=default_api)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--warmup", type=int, default=0, help="requests made first and excluded from the figures")
    p.add_argument("--timeout", type=float, default=300.0, help="per-request timeout, seconds")
    p.add_argument("--grace", type=float, default=30.0, help="seconds in-flight requests get after --duration")
    p.add_argument("--scheme", choices=("http", "https"), default="http")
    p.add_argument("--url", default=None,
                   help="the server's base URL (scheme, host, port and path); default SCHEME://HOST:PORT")
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


def read_prompts(path):
    with open(path, encoding="utf-8") as handle:
        return parse_prompts(handle.read(), path)


# ---------------------------------------------------------------- one request

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


# ---------------------------------------------------------------- the run

class Run:
    def __init__(self, args, model, bodies, url):
        self.args, self.model, self.bodies, self.url = args, model, bodies, url
        self.records = []
        self.stopping = asyncio.Event()
        self.interrupted = False
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
        outcome = parse_stream(record.reads, self.args.api)
        record.reads = None  # free the bytes
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
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(base + models_path(args.api),
                                   timeout=aiohttp.ClientTimeout(total=min(args.timeout, 30))) as r:
                data = await r.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, OSError):
        return None
    return first_model(data, args.api)


def base_url(args):
    """The URL the API paths go under: ``--url`` (a proxy's path prefix kept), else scheme, host and port."""
    return args.url.rstrip("/") if args.url else "%s://%s:%d" % (args.scheme, args.host, args.port)


async def run(args):
    base = base_url(args)
    url = base + api_path(args.api)
    loop = asyncio.get_running_loop()
    model = args.model or await discover_model(args, base) or "default"
    if args.prompt:
        prompts = list(args.prompt)
    elif args.prompts_file:
        prompts = read_prompts(args.prompts_file)
    else:
        prompts = synthetic_prompts(min(args.num_requests + args.warmup, MAX_DISTINCT_PROMPTS),
                                    args.prompt_length, args.seed)
    bodies = [request_body(args.api, model, p, args.max_tokens, args.seed) for p in prompts]
    state = Run(args, model, bodies, url)
    state.prompt_words = [len(p.split()) for p in prompts]
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, state.stop)
    try:
        await state.main()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return state


# ---------------------------------------------------------------- writing what was measured

def write_requests(path, records, origin):
    """The per-request JSONL beside the document, whole or not at all (as the document itself)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomically(path, "".join(line + "\n" for line in request_lines(records, origin)))


def main(argv=None, client_name="ollama_benchmark", default_api="generate"):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv, default_api)
    began = started_now()
    state = asyncio.run(run(args))
    if not hasattr(state, "origin"):  # stopped during warm-up
        state.origin, state.origin_epoch = perf_counter_ns(), time.time()
    document = build_document(
        state.records, args, client_name=client_name, model=state.model, url=state.url,
        distinct_prompts=len(state.bodies), prompt_words=state.prompt_words, origin=state.origin,
        origin_epoch=state.origin_epoch, job=this_job(), started_at=began,
        command=[sys.executable, "-m", "orch.clients." + client_name] + list(argv))
    path = requests_path(args.output)
    write_requests(path, state.records, state.origin)
    document["raw"]["requests"] = os.path.basename(path)
    document["run"]["partial"] = state.interrupted
    document["run"]["ended_at"] = results.now_iso(started_now())
    write_document(args.output, document)
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
