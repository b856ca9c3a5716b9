"""What a submission is made of on the command line: the file, its parameters and options.

``submit`` and ``schedule create`` take the same ones (a schedule runs what a submit
would, again and again), so both are declared and read here once.
"""

from __future__ import annotations

import json
import os

from . import parameters as params
from .common import UserError

NOTIFY_CHOICES = ("never", "failure", "always")


def check_file(path: str) -> None:
    """UserError unless ``path`` is a readable file (said now, not as a failed upload)."""
    if not os.path.exists(path):
        raise UserError(f"no such file: {path}")
    if os.path.isdir(path):
        raise UserError(f"{path} is a directory: submit a notebook, a script or a .zip bundle")
    try:
        open(path, "rb").close()
    except OSError as e:  # e.g. permissions
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None


def add_options(s, what: str = "job") -> None:
    """The name, parameter, resource and notification options of a submission of ``what``."""
    s.add_argument("--name", help=f"the {what}'s name (default: the file's)")
    s.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a parameter; True/False/None, integers and floats become those, else a string")
    s.add_argument("-r", "--parameter-raw", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a parameter kept as a string")
    s.add_argument("-y", "--parameters-yaml", action="append", default=[], metavar="YAML",
                   help="parameters as a YAML mapping, e.g. '{alpha: 0.5}'")
    s.add_argument("-f", "--parameters-file", action="append", default=[], metavar="FILE",
                   help="parameters from a YAML or JSON file")
    s.add_argument("--parameters", metavar="JSON",
                   help='parameters as a JSON object, e.g. \'{"alpha": 0.5}\'')
    s.add_argument("--resources", metavar="JSON",
                   help='e.g. \'{"cpu": 1, "memory": "2GB"}\' (default: sized for you)')
    s.add_argument("--timeout", type=float, metavar="SECONDS", help="time limit (default: sized for you)")
    s.add_argument("--callback-url", dest="callback_url", metavar="URL",
                   help="called with the job when it ends" + (" (each run's)" if what != "job" else ""))
    s.add_argument("--output-formats", dest="output_formats", metavar="LIST", help="e.g. html,md")
    s.add_argument("--entry", metavar="PATH", help="file to run inside a .zip bundle")
    s.add_argument("--notify", choices=NOTIFY_CHOICES,
                   help="when to mail you about " + ("the job" if what == "job" else "each run")
                        + ": never (default), failure, always")


def fields(args) -> dict:
    """The submission's form fields from the options (JSON-encoded where the API takes JSON)."""
    try:
        parameters = params.collect(args.parameters, args.parameters_file, args.parameters_yaml,
                                    args.parameter, args.parameter_raw)
    except params.ParameterError as e:
        raise UserError(str(e)) from None
    out = {}
    if parameters is not None:
        out["parameters"] = json.dumps(parameters)
    for key in ("name", "resources", "timeout", "callback_url", "output_formats", "entry", "notify"):
        value = getattr(args, key)
        if value is not None:
            out[key] = str(value)
    return out
