"""The LLM client's own ceiling (concurrent streams on one core, added latency per token) and its fidelity.

The fake server (tests/llm_server.py, zero injected delay) runs in its own process; the client
(``python -m orch.clients.ollama_benchmark``) and the baseline each run pinned to one core. The
baseline is a minimal raw-socket reader in the same run against the same server: an asyncio
``Protocol`` that writes the same HTTP request over keep-alive connections and only timestamps reads
and counts token lines with ``bytes.count`` (no HTTP library, no JSON). For each concurrency:

  * client and baseline TPOT p50 ((last token - first token)/(out - 1), same definition on both sides)
    and their difference = the client's added latency per token (target < 0.2 ms/token);
  * e2el p50 difference / tokens (the same, TTFT included);
  * tokens/s, errors, client CPU seconds per token and CPU utilisation of its core (a client at ~100 %
    is the bottleneck; well below, the server is). "Sustained" = every stream completed with no error.

``--fidelity`` measures instead how close the client's TTFT and inter-token latency come to the injected
delays, per API (Ollama ``/api/generate``, ``/api/chat``, OpenAI SSE ``/v1/chat/completions``) and
concurrency: the server injects TTFT 50 ms and 10 ms between tokens (20 tokens), and the same raw-socket
reader, speaking each API, is the baseline, so the server's own overhead cancels out. Per cell, orch and
the baseline run back to back, the order alternating over ``--repetitions``; reported: p50 of TTFT, TPOT
and ICL on both sides and orch's offset over the baseline (median over the repetitions of the paired
differences). Target: orch's TTFT p50 within 2 ms of the baseline's at concurrency 1, every API.

Usage: python benchmarks/bench_llm_client.py [--concurrency 1,100,1000] [--tokens 64] [--rounds 2]
       [--json out.json] [--no-check]. Exit 1 when a target is missed (unless --no-check).
       python benchmarks/bench_llm_client.py --fidelity [--fidelity-concurrency 1,8,64]
       [--fidelity-requests 32] [--repetitions 3] [--json out.json] [--no-check]
"""
import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, ROOT)

from llm_server import running_server  # noqa: E402
from orch.results import percentile  # noqa: E402

ADDED_PER_TOKEN_MS = 0.2
STREAMS_TARGET = 1000
FIDELITY_TTFT_MS = 2.0  # orch's TTFT p50 over the raw client's, concurrency 1
FIDELITY_MODEL = "mock?ttft_ms=50&itl_ms=10&tokens=20&t=fidelity-%s-%d-%d"
FIDELITY_TOKENS = 20
APIS = ("generate", "chat", "openai")
# per API: the path, and the bytes that occur once in each token-bearing chunk and in no other (the
# server's json.dumps spacing; the OpenAI role-only first chunk reads '"delta": {"role": ...', not a token)
API_PATHS = {"generate": "/api/generate", "chat": "/api/chat", "openai": "/v1/chat/completions"}
TOKEN_MARKS = {"generate": b'"done": false', "chat": b'"done": false', "openai": b'"delta": {"content": "'}


# ---------------------------------------------------------------- the baseline: raw sockets

class RawStream(asyncio.Protocol):
    """One keep-alive connection making ``count`` requests back to back; reads timestamped only.

    A read's token count is the number of ``mark`` in it (a mark split across two reads would be missed;
    the server's writes are small and arrive whole on loopback, and ``--fidelity`` checks the count).
    The first ``warmup`` results are dropped."""

    def __init__(self, request, count, done, mark=TOKEN_MARKS["generate"], warmup=0):
        self.request, self.left, self.done, self.mark, self.warmup = request, count + warmup, done, mark, warmup
        self.results, self.reads = [], None

    def connection_made(self, transport):
        self.transport = transport
        self.send()

    def send(self):
        self.t_send, self.reads = time.perf_counter_ns(), []
        self.transport.write(self.request)

    def data_received(self, data):
        now = time.perf_counter_ns()
        self.reads.append((now, data.count(self.mark)))
        if data.endswith(b"0\r\n\r\n"):  # end of the chunked body
            times = [t for t, n in self.reads for _ in range(n)]  # one per token, as orch stamps lines
            if self.warmup:
                self.warmup -= 1
            else:
                self.results.append((self.t_send, times[0], times[-1], len(times), times))
            self.left -= 1
            if self.left:
                self.send()
            else:
                self.transport.close()
                self.done.set_result(self.results)


async def raw_baseline(port, body, concurrency, per_stream, api="generate", warmup=0):
    loop = asyncio.get_running_loop()
    request = (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % (API_PATHS[api].encode(), len(body))) + body
    futures = []
    for _ in range(concurrency):
        done = loop.create_future()
        await loop.create_connection(lambda: RawStream(request, per_stream, done, TOKEN_MARKS[api], warmup),
                                     "127.0.0.1", port)
        futures.append(done)
    results = [r for rs in await asyncio.gather(*futures) for r in rs]
    return results


def request_body(api, model, tokens):
    """The body orch's client sends for ``api`` (prompt of 16 words), as bytes."""
    prompt = "x " * 16
    if api == "generate":
        body = {"model": model, "prompt": prompt, "stream": True, "options": {"num_predict": tokens}}
    elif api == "chat":
        body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True,
                "options": {"num_predict": tokens}}
    else:
        body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True,
                "max_tokens": tokens, "stream_options": {"include_usage": True}}
    return json.dumps(body).encode()


def baseline_main(port, concurrency, per_stream, model, tokens, api="generate", warmup=0):
    body = request_body(api, model, tokens)
    cpu0, t0 = time.process_time(), time.perf_counter()
    results = asyncio.run(raw_baseline(port, body, concurrency, per_stream, api, warmup))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    tpot = sorted((last - first) / 1e6 / (out - 1) for _, first, last, out, _ in results if out > 1)
    e2el = sorted((last - send) / 1e6 for send, _, last, _, _ in results)
    ttft = sorted((first - send) / 1e6 for send, first, _, _, _ in results)
    icl = sorted((b - a) / 1e6 for *_, times in results for a, b in zip(times, times[1:]))
    out = sum(r[3] for r in results)
    print(json.dumps({"tpot_p50": percentile(tpot, 50), "e2el_p50": percentile(e2el, 50),
                      "ttft_p50": percentile(ttft, 50), "icl_p50": percentile(icl, 50), "requests": len(results),
                      "tokens": out, "tokens_per_s": out / wall, "cpu_s": cpu, "wall_s": wall}))


# ---------------------------------------------------------------- one measurement

def pinned(cpu):
    return ["taskset", "-c", str(cpu)] if cpu is not None else []


def run_baseline(port, concurrency, per_stream, model, tokens, cpu, api="generate", warmup=0):
    out = subprocess.run(pinned(cpu) + [sys.executable, os.path.abspath(__file__), "--baseline-child",
                                        str(port), str(concurrency), str(per_stream), model, str(tokens), api,
                                        str(warmup)],
                         capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout)


def run_client(port, concurrency, requests, model, tokens, cpu, directory, api="generate", warmup=0):
    output = os.path.join(directory, "client-%s-%d.json" % (api, concurrency))
    argv = pinned(cpu) + [sys.executable, "-m", "orch.clients.ollama_benchmark", "--host", "127.0.0.1",
                          "--port", str(port), "--duration", "600", "--model", model, "--num-requests",
                          str(requests), "--concurrency", str(concurrency), "--max-tokens", str(tokens),
                          "--prompt-length", "16", "--api", api, "--warmup", str(warmup), "--output", output]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    wall = time.perf_counter() - start
    with open(output, encoding="utf-8") as handle:
        doc = json.load(handle)
    cpu_s = usage.ru_utime + usage.ru_stime
    return {"status": proc.returncode, "doc": doc, "cpu_s": cpu_s, "wall_s": wall}


def measure(port, concurrency, tokens, rounds, cpu, directory, itl_ms=0):
    model = "mock?tokens=%d&c=%d&itl_ms=%s" % (tokens, concurrency, itl_ms)
    requests = concurrency * rounds
    base = run_baseline(port, concurrency, rounds, model, tokens, cpu)
    client = run_client(port, concurrency, requests, model, tokens, cpu, directory)
    doc = client["doc"]
    lat, counts = doc["latency"], doc["counts"]
    out_tokens = doc["domain"]["tokens"]["output_total"]
    window = doc["window"]["duration_s"] or 1
    return {
        "concurrency": concurrency, "requests": requests, "tokens_per_request": tokens, "itl_ms": itl_ms,
        "client_icl_p50_ms": lat["icl_ms"]["p50"],
        "completed": counts["completed"], "failed": counts["failed"], "errors": counts["errors"],
        "client_tpot_p50_ms": lat["tpot_ms"]["p50"], "baseline_tpot_p50_ms": base["tpot_p50"],
        "added_tpot_ms": lat["tpot_ms"]["p50"] - base["tpot_p50"],
        "client_e2el_p50_ms": lat["e2el_ms"]["p50"], "baseline_e2el_p50_ms": base["e2el_p50"],
        "added_e2el_per_token_ms": (lat["e2el_ms"]["p50"] - base["e2el_p50"]) / tokens,
        "client_ttft_p50_ms": lat["ttft_ms"]["p50"], "baseline_ttft_p50_ms": base["ttft_p50"],
        "client_tokens_per_s": doc["throughput"]["output_tokens_per_s"], "baseline_tokens_per_s": base["tokens_per_s"],
        "client_cpu_us_per_token": client["cpu_s"] / max(out_tokens, 1) * 1e6,
        "client_cpu_util": client["cpu_s"] / client["wall_s"],
        "client_window_s": window, "client_status": client["status"],
        "sustained": counts["completed"] == requests and counts["failed"] == 0,
    }


def measure_fidelity(port, api, concurrency, requests, repetitions, cpu, directory):
    """orch and the raw client, back to back, ``repetitions`` times (order alternating), one API and concurrency."""
    per_stream = max(1, -(-requests // concurrency))
    pairs = []
    for rep in range(repetitions):
        model = FIDELITY_MODEL % (api, concurrency, rep)
        sides = {}
        for side in (("orch", "raw") if rep % 2 == 0 else ("raw", "orch")):
            if side == "raw":
                sides["raw"] = run_baseline(port, concurrency, per_stream, model, FIDELITY_TOKENS, cpu, api, warmup=1)
            else:
                client = run_client(port, concurrency, per_stream * concurrency, model, FIDELITY_TOKENS, cpu,
                                    directory, api, warmup=concurrency)
                doc = client["doc"]
                lat = doc["latency"]
                sides["orch"] = {"ttft_p50": lat["ttft_ms"]["p50"], "tpot_p50": lat["tpot_ms"]["p50"],
                                 "icl_p50": lat["icl_ms"]["p50"], "requests": doc["counts"]["completed"],
                                 "failed": doc["counts"]["failed"]}
        pairs.append(sides)

    def median(values):
        return percentile(sorted(values), 50)

    row = {"api": api, "concurrency": concurrency, "requests": per_stream * concurrency, "repetitions": repetitions,
           "complete": all(p["orch"]["requests"] == p["raw"]["requests"] == per_stream * concurrency
                           and p["raw"]["tokens"] == per_stream * concurrency * FIDELITY_TOKENS
                           and p["orch"]["failed"] == 0 for p in pairs),
           "pairs": pairs}
    for metric in ("ttft", "tpot", "icl"):
        key = metric + "_p50"
        row["orch_" + key] = median(p["orch"][key] for p in pairs)
        row["raw_" + key] = median(p["raw"][key] for p in pairs)
        row[metric + "_offset_ms"] = median(p["orch"][key] - p["raw"][key] for p in pairs)
        row[metric + "_offsets_ms"] = [p["orch"][key] - p["raw"][key] for p in pairs]
    return row


def fidelity_main(args, info):
    rows = []
    concurrencies = [int(x) for x in args.fidelity_concurrency.split(",") if x]
    with tempfile.TemporaryDirectory() as directory, running_server(lifetime=3600, cpu=args.server_cpu) as port:
        for concurrency in concurrencies:
            for api in APIS:
                row = measure_fidelity(port, api, concurrency, args.fidelity_requests, args.repetitions,
                                       args.client_cpu, directory)
                rows.append(row)
                print("%-8s c=%-3d %3d req | TTFT p50 orch %.3f raw %.3f offset %+.3f ms | TPOT p50 orch %.3f raw %.3f "
                      "offset %+.3f | ICL p50 orch %.3f raw %.3f offset %+.3f | TTFT offsets %s%s"
                      % (api, concurrency, row["requests"], row["orch_ttft_p50"], row["raw_ttft_p50"],
                         row["ttft_offset_ms"], row["orch_tpot_p50"], row["raw_tpot_p50"], row["tpot_offset_ms"],
                         row["orch_icl_p50"], row["raw_icl_p50"], row["icl_offset_ms"],
                         ", ".join("%+.3f" % x for x in row["ttft_offsets_ms"]),
                         "" if row["complete"] else "  INCOMPLETE"), flush=True)
    info["loadavg_1m_end"] = os.getloadavg()[0]
    print("machine: %s" % json.dumps(info))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"machine": info, "fidelity": rows}, handle, indent=2)
    missed = ["%s c=%d: orch's TTFT p50 %+.3f ms over the raw client's (target %.0f ms)"
              % (row["api"], row["concurrency"], row["ttft_offset_ms"], FIDELITY_TTFT_MS)
              for row in rows if row["concurrency"] == 1 and abs(row["ttft_offset_ms"]) > FIDELITY_TTFT_MS]
    missed += ["%s c=%d: requests incomplete or failed" % (row["api"], row["concurrency"])
               for row in rows if not row["complete"]]
    if 1 not in concurrencies:
        missed.append("no run at concurrency 1: the TTFT target was not checked")
    for line in missed:
        print("TARGET MISSED: " + line, file=sys.stderr)
    return 1 if missed and not args.no_check else 0


def machine():
    import aiohttp

    from machine import cpu_model  # benchmarks/machine.py, beside this script

    return {"cpu": cpu_model(platform.processor() or ""), "cpus": os.cpu_count(), "python": platform.python_version(),
            "aiohttp": aiohttp.__version__, "kernel": platform.release(), "loadavg_1m": os.getloadavg()[0],
            "date": time.strftime("%Y-%m-%d")}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--concurrency", default="1,100,1000")
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3, help="requests per stream")
    p.add_argument("--paced", default="1000:100", help="CONCURRENCY:ITL_MS runs with a paced server ('' for none)")
    p.add_argument("--paced-tokens", type=int, default=32)
    p.add_argument("--client-cpu", type=int, default=0)
    p.add_argument("--server-cpu", type=int, default=1)
    p.add_argument("--json")
    p.add_argument("--no-check", action="store_true")
    p.add_argument("--fidelity", action="store_true", help="TTFT/ITL against the injected delays, orch vs raw client")
    p.add_argument("--fidelity-concurrency", default="1,8,64")
    p.add_argument("--fidelity-requests", type=int, default=32, help="measured requests per run (at least 1 per stream)")
    p.add_argument("--repetitions", type=int, default=3, help="orch/raw pairs per API and concurrency")
    args = p.parse_args(argv)
    info = machine()
    if args.fidelity:
        return fidelity_main(args, info)
    rows = []
    with tempfile.TemporaryDirectory() as directory, running_server(lifetime=1200, cpu=args.server_cpu) as port:
        plan = [(int(x), args.tokens, 0) for x in args.concurrency.split(",") if x]
        plan += [(int(x.split(":")[0]), args.paced_tokens, float(x.split(":")[1])) for x in args.paced.split(",") if x]
        for c, tokens, itl in plan:
            row = measure(port, c, tokens, args.rounds, args.client_cpu, directory, itl)
            rows.append(row)
            print("c=%-5d itl=%-4g client tpot p50 %.4f ms  baseline %.4f  added %+.4f ms/token | e2el/token added %+.4f | "
                  "tok/s client %.0f baseline %.0f | client CPU %.1f us/token, %.0f %% of its core | %d/%d ok"
                  % (c, itl, row["client_tpot_p50_ms"], row["baseline_tpot_p50_ms"], row["added_tpot_ms"],
                     row["added_e2el_per_token_ms"], row["client_tokens_per_s"], row["baseline_tokens_per_s"],
                     row["client_cpu_us_per_token"], 100 * row["client_cpu_util"], row["completed"], row["requests"]),
                  flush=True)
    print("machine: %s" % json.dumps(info))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"machine": info, "rows": rows}, handle, indent=2)
    missed = []
    for row in rows:
        # zero delay with several streams saturates the server: TPOT is then its throughput share, not a latency
        latency_row = row["concurrency"] == 1 or row["itl_ms"] > 0
        if latency_row and row["added_tpot_ms"] > ADDED_PER_TOKEN_MS:
            missed.append("c=%d: added %.3f ms/token > %.1f" % (row["concurrency"], row["added_tpot_ms"],
                                                                ADDED_PER_TOKEN_MS))
        if not row["sustained"]:
            missed.append("c=%d: %d of %d requests completed" % (row["concurrency"], row["completed"], row["requests"]))
    if not any(row["concurrency"] >= STREAMS_TARGET and row["sustained"] and row["itl_ms"] > 0
               and row["added_tpot_ms"] <= ADDED_PER_TOKEN_MS for row in rows):
        missed.append("no run sustained >= %d concurrent streams" % STREAMS_TARGET)
    for line in missed:
        print("TARGET MISSED: " + line, file=sys.stderr)
    return 1 if missed and not args.no_check else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--baseline-child":
        port, concurrency, per_stream, model, tokens, api, warmup = sys.argv[2:9]
        baseline_main(int(port), int(concurrency), int(per_stream), model, int(tokens), api, int(warmup))
    else:
        sys.exit(main())
