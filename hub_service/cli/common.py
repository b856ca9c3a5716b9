"""What every client command of ``notebook-jobs`` shares: exit codes, the one-line error, the client."""

from __future__ import annotations

import argparse
import json
import os

from ..client import Client

PROG = "notebook-jobs"
EXIT_FAILED = 1  # the job ran and did not succeed
EXIT_ERROR = 2  # the command could not do what was asked (argparse uses 2 for usage too)
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports it


class UserError(Exception):
    """A mistake in what the user typed; the text is the one line shown."""


class Parser(argparse.ArgumentParser):
    """argparse, with a usage mistake told in one line like every other one."""

    def error(self, message):
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def make_client(args) -> Client:
    """A client for ``--url`` with ``--token`` (or $JUPYTERHUB_API_TOKEN); UserError without a token."""
    token = args.token or os.environ.get("JUPYTERHUB_API_TOKEN")
    if not token:
        raise UserError("no token: pass --token, or set JUPYTERHUB_API_TOKEN "
                        "(make one on the Hub's Token page)")
    return Client(args.url, token)


def print_json(data) -> None:
    """The API's answer, for scripts: JSON and nothing else on stdout."""
    print(json.dumps(data, indent=2))
