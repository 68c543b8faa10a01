"""An experiment's resource metrics: what orch asks its Prometheus, and how the report titles the answers.

The conductor job (``orch.sections.conductor``) runs these queries once every
client has ended, before it stops the services: one range query per metric over the whole run, saved as
Prometheus answered (``metrics/<name>.json``), plus the scrape targets as
Prometheus saw them (``metrics/targets.json``). ``orch report`` plots them.

node_exporter measures the node, not the job: two members on one node
report the same CPU and memory, told apart only by their labels. cAdvisor
measures containers.
"""
import re

__all__ = ("duration_seconds", "queries", "TARGETS_FILE", "TITLES", "MAX_POINTS", "DEFAULT_SCRAPE_INTERVAL")

TARGETS_FILE = "targets.json"
DEFAULT_SCRAPE_INTERVAL = "5s"
# points per series at most: a day-long run still makes a small file
MAX_POINTS = 500


def duration_seconds(text):
    """Whole seconds of a Prometheus duration (at least 1).

    >>> duration_seconds("1m30s"), duration_seconds("5s"), duration_seconds("500ms")
    (90, 5, 1)
    """
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    total = sum(int(number) * units[unit] for number, unit in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text))
    return max(1, int(round(total)))


# file name -> (panel title, y axis label) for the report
TITLES = {
    "cpu_busy_cores": ("CPU busy (node_exporter)", "cores"),
    "memory_used_bytes": ("memory used (node_exporter)", "bytes"),
    # node_exporter leaves out the loopback device: traffic between jobs on one node is not here
    "network_receive_bytes_per_second": ("network received, loopback excluded (node_exporter)", "bytes/s"),
    "network_transmit_bytes_per_second": ("network sent, loopback excluded (node_exporter)", "bytes/s"),
    "disk_written_bytes_per_second": ("disk written (node_exporter)", "bytes/s"),
    "container_cpu_cores": ("container CPU (cAdvisor)", "cores"),
    "container_memory_bytes": ("container memory (cAdvisor)", "bytes"),
    "clients_running": ("clients loading their service", "jobs"),
}


def queries(run_id, scrape_interval):
    """``((file name, PromQL), ...)`` for one experiment run: its members' node and container resources, its clients' progress.

    Rates span four scrapes (at least 10 s), so every window holds enough samples.
    """
    window = "%ds" % max(4 * duration_seconds(scrape_interval), 10)
    run = 'orch_run="%s"' % run_id
    by = "sum by (orch_name, orch_role, instance)"
    return (
        ("cpu_busy_cores", '%s (rate(node_cpu_seconds_total{%s,mode!="idle"}[%s]))' % (by, run, window)),
        ("memory_used_bytes", "%s (node_memory_MemTotal_bytes{%s} - node_memory_MemAvailable_bytes{%s})" % (by, run, run)),
        ("network_receive_bytes_per_second", "%s (rate(node_network_receive_bytes_total{%s}[%s]))" % (by, run, window)),
        ("network_transmit_bytes_per_second", "%s (rate(node_network_transmit_bytes_total{%s}[%s]))" % (by, run, window)),
        ("disk_written_bytes_per_second", "%s (rate(node_disk_written_bytes_total{%s}[%s]))" % (by, run, window)),
        ("container_cpu_cores", "%s (rate(container_cpu_usage_seconds_total{%s}[%s]))" % (by, run, window)),
        ("container_memory_bytes", "%s (container_memory_usage_bytes{%s})" % (by, run)),
        ("clients_running", "sum by (orch_name) (orch_client_running{%s})" % run),
    )
