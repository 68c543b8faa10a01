"""How run records read on the terminal: states, endpoints, the status table. Pure: text in, text out."""

__all__ = ("state_text", "endpoint_text", "status_table", "member_name")


def endpoint_text(record):
    """``host:port`` of a running service's published endpoint, else ``-``."""
    endpoint = record.get("endpoint")
    if not endpoint or record["state"] != "running":
        return "-"
    return "%s:%s" % (endpoint.get("host"), endpoint.get("port"))


def state_text(record):
    """The state as a person reads it: ``running (ready)``, ``failed: <reason>``.

    >>> state_text({"state": "failed", "reason": "redis not ready", "role": "service"})
    'failed: redis not ready'
    """
    state = record["state"]
    if state == "running" and record.get("role") == "service":
        state += " (ready)" if record.get("ready") else " (starting)"
    if record.get("reason") and state in ("failed", "pending", "cancelled"):
        state += ": " + record["reason"]
    return state


def status_table(records):
    """``orch status``: one aligned line per record under a header; the endpoint column last, unpadded."""
    rows = [("ID", "JOB", "KIND", "STATE", "NODE", "ELAPSED", "ENDPOINT")]
    rows += [
        (r["id"], str(r.get("job_id") or "-"), r["kind"], state_text(r), r.get("node") or "-", r.get("elapsed") or "-",
         endpoint_text(r))
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] + "\n" for row in rows)


def member_name(item, experiment):
    """How ``orch run --wait`` names a line: ``run`` for the experiment, else the member's alias."""
    return "run" if item is experiment else (item.get("alias") or item["name"])
