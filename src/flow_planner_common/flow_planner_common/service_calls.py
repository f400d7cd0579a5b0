"""Service calls from a node that another thread spins, robust to the first-call race of DDS discovery.

A client discovers a server (`wait_for_service`, `service_is_ready`) once its own request writer has matched the
server's request reader; the server may not yet have matched the client's response reader. Fast DDS then waits 100 ms
for that match and drops the response ("failed to send response (timeout)" on the server), and the client waits
forever. Under load (two busy cores) discovery takes longer than that. `call_until_answered` therefore repeats a
request until it is answered: a probe the server answers quickly (a request it refuses, say) after discovery, after
which both directions are matched and every later response is delivered, or any request that is safe to repeat.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def call(client: Any, request: Any, timeout: float) -> Any | None:
    """The response to `request`, or None when none arrived within `timeout` s (the request is then forgotten).
    The client's node must be spun by an executor in another thread."""
    answered = threading.Event()
    future = client.call_async(request)
    future.add_done_callback(lambda _: answered.set())
    if answered.wait(timeout):
        return future.result()
    client.remove_pending_request(future)
    return None


def call_until_answered(
    client: Any,
    request: Any,
    timeout: float,
    attempt_timeout: float = 2.0,
    why_not: Callable[[], str | None] = lambda: None,
) -> Any:
    """Wait for the service, then send `request` (safe to repeat) every `attempt_timeout` s until it is answered;
    return the answer. `why_not` says why the server can never answer (its process exited, say) and ends the wait
    early. TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        reason = why_not()
        if reason is not None:
            raise TimeoutError(f"{client.srv_name} will not answer: {reason}")
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{client.srv_name} did not answer within {timeout:.0f} s")
        if not client.service_is_ready():
            time.sleep(min(0.05, left))
            continue
        response = call(client, request, min(attempt_timeout, left))
        if response is not None:
            return response
