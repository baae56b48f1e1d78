"""Preload + fork: workers share the model's memory, so four workers cost little more than one."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests


def total_pss_kib(master_pid: int) -> int:
    """Proportional set size of the master and its workers: shared pages are counted once overall."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    total = 0
    for pid in [master_pid, *map(int, children)]:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    return total


def warm(url: str, rows) -> None:
    def post(row):
        return requests.post(url + "/predict", json={"features": row.tolist()}, headers={"Connection": "close"})

    with ThreadPoolExecutor(8) as pool:
        assert all(r.status_code == 200 for r in pool.map(post, rows))


def test_four_workers_use_at_most_one_and_a_half_times_one(server_factory, models):
    measured = {}
    for workers in (1, 4):
        server = server_factory(models["forest"], "--name", "forest", "--workers", str(workers))
        warm(server.url, models["forest_X"][:80])
        measured[workers] = total_pss_kib(server.process.pid)
        server.stop()
    assert measured[4] <= 1.5 * measured[1], measured
