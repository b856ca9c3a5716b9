"""Webhook callbacks when a job ends, signed so the receiver can trust them.

The body is the job's JSON; ``X-Notebook-Jobs-Signature: sha256=<hex>`` is the
HMAC-SHA256 of the body with the service's webhook secret (GitHub's scheme, so existing
verifiers work). Delivery is retried with backoff and never blocks the job's ending.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

SIGNATURE_HEADER = "X-Notebook-Jobs-Signature"
log = logging.getLogger(__name__)


def sign(body: bytes, secret: str) -> str:
    """The signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def deliver(url: str, payload: dict, secret: str, attempts: int = 3, timeout: float = 10.0) -> bool:
    """POST ``payload`` to ``url``; True once a 2xx answer came back."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "notebook-jobs"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    client = AsyncHTTPClient()
    for attempt in range(attempts):
        try:
            await client.fetch(HTTPRequest(url, "POST", headers, body, request_timeout=timeout))
            return True
        except (HTTPClientError, OSError) as e:
            log.warning("webhook %s attempt %d failed: %s", url, attempt + 1, e)
        if attempt + 1 < attempts:
            await asyncio.sleep(2**attempt)
    return False
