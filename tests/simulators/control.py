"""Driving a running simulator from a test through its ``/_sim/`` control endpoints (``simulators/base.py``)."""
import requests


def control(sim, path: str, **body) -> dict:
    """POSTs ``body`` to ``/_sim<path>`` (faults, deliveries, shop actions …) and returns the answer."""
    answer = requests.post(f"{sim.url}/_sim{path}", json=body, timeout=60)
    assert answer.ok, answer.text
    return answer.json()


def sim_state(sim) -> dict:
    """What the simulator holds now (its ``state`` in ``/_sim/state``)."""
    return requests.get(f"{sim.url}/_sim/state", timeout=10).json()["state"]
