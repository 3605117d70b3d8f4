"""Raw calls to a test's Prefect server API, retried as Prefect's own client retries."""

import time
from typing import Any

import httpx

# What Prefect's own client retries: a busy server (SQLite locked under a loaded machine) answers
# 503 having changed nothing (CI once got one on create_flow_run)
RETRIED_STATUSES = {429, 502, 503}


def prefect_api(method: str, url: str, **kwargs: Any) -> Any:
    """One call to the Prefect API, retried as Prefect's client retries; its JSON answer."""
    for attempt in range(6):
        response = httpx.request(method, url, timeout=10, **kwargs)
        if response.status_code not in RETRIED_STATUSES or attempt == 5:
            break
        time.sleep(0.5 * 2**attempt)
    response.raise_for_status()
    return response.json()
