"""The LLM client's results: the ``orch.result/1`` document and the per-request JSONL, from raw samples.

Pure: the driver (``orch.clients.ollama_benchmark``) hands over its ``Request`` records (timestamps in
``perf_counter_ns``, one clock per process) and the run's identity; nothing here reads a clock or the
environment or writes a file.

Per request: ``t_intended`` (scheduled send), ``t_send`` (just before the request is written),
``t_first_byte`` (response headers), ``t_first_token`` (first chunk with non-empty content *or*
reasoning/thinking; a role-only chunk never counts), ``t_last_token`` (last token-bearing chunk; never
the ``[DONE]``, usage or ``done: true`` object), ``t_end`` (response fully read), ``status``, ``error``,
``out_tokens``; in the JSONL as ms from the run's origin (``domain.clock.origin_epoch``).

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
``{message: n}``.
"""
import json

from orch import results

__all__ = ("Request", "request_line", "request_lines", "requests_path", "build_document")

SEND_LAG_LIMIT_MS = 10.0
ACHIEVED_FRACTION = 0.95

DEFINITIONS = {
    "ttft": "first chunk with non-empty content or reasoning - t_send (role-only chunks skipped)",
    "e2el": "last token-bearing chunk - t_send (not [DONE]/usage/done object)",
    "tpot": "(e2el - ttft)/(out_tokens - 1), null if out_tokens <= 1 (vLLM TPOT = AIPerf ITL)",
    "icl": "every gap between consecutive token-bearing chunks (vLLM ITL, AIPerf ICL)",
    "e2el_intended": "last token-bearing chunk - intended send time",
    "window": "first t_send .. last t_end of finished measured requests",
}


class Request:
    """One request's raw sample: the driver fills in the times and the reads, ``done`` is the parsed outcome
    (``orch.clients.llm_streams.parse_stream``)."""

    __slots__ = ("i", "warmup", "t_intended", "t_send", "t_first_byte", "t_end", "status", "error",
                 "timeout", "cancelled", "reads", "done")

    def __init__(self, i, warmup, t_intended):
        self.i, self.warmup, self.t_intended = i, warmup, t_intended
        self.t_send = self.t_first_byte = self.t_end = None
        self.status = self.error = None
        self.timeout = self.cancelled = False
        self.reads = []
        self.done = None

    @property
    def ok(self):
        return self.error is None and self.status == 200


def _ms(ns):
    return ns / 1e6


def request_line(record, origin):
    """One request's JSONL record, times in ms from ``origin``."""
    def rel(t):
        return None if t is None else round((t - origin) / 1e6, 4)

    outcome = record.done or {}
    times = outcome.get("token_times") or []
    status = "cancelled" if record.cancelled else ("timeout" if record.timeout else
                                                   ("ok" if record.ok else "error"))
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


def request_lines(records, origin):
    """The JSONL lines (without newline) of ``records``, in the order they were sent."""
    for record in sorted(records, key=lambda r: (r.t_send or 0, r.i)):
        yield json.dumps(request_line(record, origin), separators=(",", ":"))


def requests_path(output):
    """Where the per-request records of the document at ``output`` go.

    >>> requests_path("/runs/r1/result.json")
    '/runs/r1/result.requests.jsonl'
    """
    stem = output[:-5] if output.endswith(".json") else output
    return stem + ".requests.jsonl"


def counts(measured):
    """``doc["counts"]`` of the measured (not warm-up) records."""
    finished = [r for r in measured if not r.cancelled]
    failed = [r for r in finished if not r.ok]
    errors = {}
    for r in failed:
        errors[r.error or "error"] = errors.get(r.error or "error", 0) + 1
    return {"sent": len(measured), "completed": len(finished) - len(failed), "failed": len(failed),
            "timeouts": sum(1 for r in failed if r.timeout), "errors": errors,
            "cancelled": len(measured) - len(finished)}


def latency_samples(ok):
    """Raw samples (ms) of the completed records: ``{ttft, tpot, icl, e2el, e2el_intended}``, the output
    tokens in all and how many responses each token source counted."""
    samples = {"ttft": [], "tpot": [], "icl": [], "e2el": [], "e2el_intended": []}
    tokens_total, sources = 0, {}
    for r in ok:
        o = r.done
        times = o["token_times"]
        out = o["out_tokens"] or 0
        tokens_total += out
        sources[o["token_source"]] = sources.get(o["token_source"], 0) + 1
        if not times:
            continue
        first, last = times[0] - r.t_send, times[-1] - r.t_send
        samples["ttft"].append(_ms(first))
        samples["e2el"].append(_ms(last))
        samples["e2el_intended"].append(_ms(times[-1] - r.t_intended))
        if out > 1:
            samples["tpot"].append(_ms(last - first) / (out - 1))
        samples["icl"].extend(_ms(b - a) for a, b in zip(times, times[1:]))
    return samples, tokens_total, sources


def fidelity(measured, request_rate):
    """``domain.fidelity``: the offered and achieved rate, send lag and whether the run is degraded."""
    open_loop = request_rate is not None
    sends = sorted(r.t_send for r in measured)
    achieved = (len(sends) - 1) / ((sends[-1] - sends[0]) / 1e9) if len(sends) > 1 and sends[-1] > sends[0] else None
    lag_summary = results.summary([_ms(r.t_send - r.t_intended) for r in measured]) if open_loop else None
    reasons = []
    if open_loop and lag_summary and lag_summary["p99"] > SEND_LAG_LIMIT_MS:
        reasons.append("p99 send lag %.1f ms > %.0f ms" % (lag_summary["p99"], SEND_LAG_LIMIT_MS))
    if open_loop and achieved is not None and achieved < ACHIEVED_FRACTION * request_rate:
        reasons.append("achieved %.2f rps < %d %% of offered %.2f" % (achieved, ACHIEVED_FRACTION * 100, request_rate))
    return {
        "offered_rps": request_rate,
        "achieved_rps": achieved,
        "achieved_definition": "(sent-1)/(last t_send - first t_send)",
        "send_lag_ms": lag_summary,
        "degraded": bool(reasons),
        "reasons": reasons,
    }


def ollama_server(ok):
    """``domain.server_reported.ollama``: the server's own figures of the completed responses, pooled."""
    servers = [r.done["server"] for r in ok if r.done["server"]]

    def total(key):
        return sum(s.get(key) or 0 for s in servers)

    loads = [s["load_duration"] / 1e6 for s in
             (r.done["server"] for r in sorted(ok, key=lambda r: r.t_send)) if s.get("load_duration") is not None]
    return {
        "definition": "prefill = sum(prompt_eval_count)/sum(prompt_eval_duration); decode = sum(eval_count)/"
                      "sum(eval_duration); pooled per-request rates, not aggregate server throughput",
        "prefill_tok_s": total("prompt_eval_count") / (total("prompt_eval_duration") / 1e9)
        if total("prompt_eval_duration") else None,
        "decode_tok_s": total("eval_count") / (total("eval_duration") / 1e9) if total("eval_duration") else None,
        "load_ms_total": sum(loads) if loads else None,
        "load_ms_first": loads[0] if loads else None,
        "load_ms_max": max(loads) if loads else None,
        "responses": len(servers),
    }


def _prompt_source(args):
    """Where the prompts came from: the prompts file, the recipe's own (``--prompt``), or synthetic."""
    return args.prompts_file or ("recipe" if getattr(args, "prompt", None) else "synthetic")


def build_document(records, args, *, client_name, model, url, distinct_prompts, prompt_words, origin,
                   origin_epoch, job, started_at, command):
    """The ``orch.result/1`` document of a run: ``records`` as the driver left them (every record sent,
    parsed), ``args`` its parsed flags, ``origin``/``origin_epoch`` the same instant on both clocks."""
    from orch import __version__

    parameters = {k: v for k, v in vars(args).items() if k not in ("host", "port", "output")}
    parameters["model"] = model
    doc = results.new_document(
        client_name, parameters,
        {"kind": "openai" if args.api == "openai" else "ollama", "url": url, "host": args.host, "port": args.port},
        job=job, started_at=started_at, tool="orch", tool_version=__version__, command=command,
    )
    measured = [r for r in records if not r.warmup]
    finished = [r for r in measured if not r.cancelled]
    ok = [r for r in finished if r.ok]
    doc["counts"] = counts(measured)

    samples, tokens_total, sources = latency_samples(ok)
    doc["latency"] = {name + "_ms": results.summary(values) for name, values in samples.items()}

    window = None
    if measured and finished:
        start = min(r.t_send for r in measured)
        end = max(r.t_end for r in finished)
        window = max(end - start, 1) / 1e9
        doc["window"].update(start_epoch=origin_epoch + (start - origin) / 1e9,
                             end_epoch=origin_epoch + (end - origin) / 1e9, duration_s=window)
    doc["throughput"] = {
        "requests_per_s": len(ok) / window if window else None,
        "output_tokens_per_s": tokens_total / window if window else None,
        "goodput_rps": None,
    }

    open_loop = args.request_rate is not None
    doc["domain"] = {
        "api": args.api,
        "model": model,
        "workload": {
            "loop": "open" if open_loop else "closed",
            "arrival": args.arrival if open_loop else None,
            "target_rps": args.request_rate,
            "concurrency": args.concurrency or (None if open_loop else 1),
            "warmup": {"requests": args.warmup, "excluded": True},
            "prompts": {"source": _prompt_source(args), "distinct": distinct_prompts,
                        "length_unit": "words (tokens approximated by whitespace-separated words; not tokenized)",
                        "length_words": results.summary(prompt_words)},
            "max_tokens": args.max_tokens,
        },
        "tokens": {"source": (max(sources, key=sources.get) if sources else None), "sources": sources,
                   "output_total": tokens_total},
        "fidelity": fidelity(measured, args.request_rate),
        "server_reported": None if args.api == "openai" else {"ollama": ollama_server(ok)},
        "clock": {"source": "time.perf_counter_ns", "origin_epoch": origin_epoch},
        "definitions": dict(DEFINITIONS),
    }
    return doc
