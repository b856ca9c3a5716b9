"""Who is calling: the Hub's answer about a token, cached for ``auth_cache_max_age`` and asked again ahead of
its expiry.

HubAuth caches the Hub's answer about a token (or a login cookie's token) for ``cache_max_age`` seconds and
asks the Hub again on the first request after that: that request waits for a round trip to the Hub. With the
short age this service keeps (5 s by default, so that a token revoked in the Hub stops working here within
it), a client that calls often waits once every 5 s per token. During a drain of jobs (``bench_load
--drain``: a client rotating five users' tokens) that was about one listing in ten, each waiting for the
Hub's answer (3 ms at its median, 19 at its 90th percentile, 29 at its 99th, as the Hub logged them): the
listing's slowest 1%. Asked ahead, the service's own p99 for a listing during a drain went from 26.4 to
13.1 ms (one A/B, the same go).

:class:`RefreshingHubOAuth` asks the Hub again in the background once an answer is half its age, while the
answer still serves: a token in use is never a cache miss, and the bound stays: no request is served on an
answer older than ``cache_max_age`` (the cache's own expiry is unchanged), and a token the Hub no longer
knows is refused from the answer the refresh brings (None, as on a miss).
"""

from __future__ import annotations

import asyncio
import time

from jupyterhub.services.auth import HubOAuth


class RefreshingHubOAuth(HubOAuth):
    """HubOAuth whose cached answers are asked for again in the background at half their age."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._refreshing = {}  # cache key -> the task asking the Hub again (a reference held until it ends)

    async def _check_hub_authorization(self, url, api_token, cache_key=None, use_cache=True):
        if use_cache and cache_key is not None and cache_key not in self._refreshing:
            # (the cache's times are HubAuth's own: without them, as in a HubAuth that changed, nothing is refreshed)
            asked = getattr(self.cache, "timestamps", {}).get(cache_key)
            # (an answer past its age is asked for on this request's path anyway: no second call beside it)
            if asked is not None and self.cache_max_age / 2 < time.monotonic() - asked <= self.cache_max_age:
                self._refreshing[cache_key] = asyncio.ensure_future(self._refresh(url, api_token, cache_key))
        return await super()._check_hub_authorization(url, api_token, cache_key=cache_key, use_cache=use_cache)

    async def _refresh(self, url, api_token, cache_key) -> None:
        """Ask the Hub about ``api_token`` again and cache its answer; a failure leaves the cached answer to expire
        (the next request after that asks on its own path, as without a refresh)."""
        try:
            self.cache[cache_key] = await super()._check_hub_authorization(url, api_token, cache_key=cache_key,
                                                                           use_cache=False)
        except Exception as e:  # (the Hub unreachable or answering an error: HubAuth raises an HTTPError)
            self.log.warning("asking the Hub about a token ahead of its cache's expiry failed: %s", e)
        finally:
            self._refreshing.pop(cache_key, None)
