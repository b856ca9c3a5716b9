"""Schemathesis hooks for tests/test_openapi.py: keep the fuzzer's traffic on this machine, and bounded.

A generated ``callback_url`` (``https://0.com``) would make the service POST there when
the job ends; the test suite talks only to loopback, so the field is never generated.
``logs?follow=1`` rightly waits for the job to end, which for a job queued behind the
fuzzer's others is longer than a request may take; the plain log is asked for instead.
"""

import schemathesis


@schemathesis.hook
def before_load_schema(context, raw_schema):
    for media in raw_schema["paths"]["/jobs"]["post"]["requestBody"]["content"].values():
        media["schema"]["properties"].pop("callback_url", None)


@schemathesis.hook
def map_case(context, case):
    if isinstance(case.body, dict):
        case.body.pop("callback_url", None)
    if case.operation.path.endswith("/logs") and isinstance(case.query, dict) and "follow" in case.query:
        case.query["follow"] = "0"
    return case
