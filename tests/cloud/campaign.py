"""A stand-in for a core's worker on the daemon: it holds the lab's lease as a campaign does."""

from __future__ import annotations

from typing import Any

from maosic.hardware import HardwareClient

WORKER = "lab@core-host:0a1b2c3d:0"  # shaped like maosic.worker_identity's stable names


class Campaign:
    """Takes the lease as ``WORKER`` (as a worker does before it claims a request) and sends
    its moving calls under that epoch."""

    def __init__(self, url: str, ttl_s: float = 60.0, take: bool = False):
        self.client = HardwareClient(url, retries=0, timeout_s=20)
        granted = self.client.call("lease.acquire", holder=WORKER, ttl_s=ttl_s, take=take)
        self.epoch: int = granted["epoch"]
        self.client.lease_epoch = self.epoch

    def call(self, method: str, **params: Any) -> Any:
        return self.client.call(method, **params)

    def close(self) -> None:
        self.client.close()
