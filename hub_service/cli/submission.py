"""What a submission is made of on the command line: the file, its parameters and options.

``submit`` and ``schedule create`` take the same ones (a schedule runs what a submit
would, again and again), so both are declared and read here once.
"""

from __future__ import annotations

import argparse
import json
import os

from . import parameters as params
from .common import PROG, UserError

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


class NameAndValues(argparse.Action):
    """``-p NAME VALUE [VALUE …]``, appended as ``[NAME, VALUE, …]``; fewer than two is argparse's own
    one-line mistake."""

    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) < 2:
            raise argparse.ArgumentError(self, "expected a NAME and a VALUE (several VALUEs make a sweep)")
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), values])


def add_options(s, what: str = "job") -> None:
    """The name, parameter, resource and notification options of a submission of ``what``."""
    s.add_argument("--name", help=f"the {what}'s name (default: the file's)")
    s.add_argument("-p", "--parameter", nargs="+", action=NameAndValues, default=[], metavar=("NAME", "VALUE"),
                   help="a parameter; True/False/None, integers and floats become those, else a string"
                        + ("; several values (-p lr 0.01 0.1 1) make a sweep: one job per combination"
                           if what == "job" else ""))
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
    s.add_argument("--env", dest="environment", metavar="NAME",
                   help=f"the environment the {what} runs in (see '{PROG} environments'; default: the Hub's)")
    s.add_argument("--requirements", metavar="FILE",
                   help="a requirements.txt of packages to install on top of the environment (from wheels; "
                        "plain specifiers only); a .zip bundle brings its own as requirements.txt")
    s.add_argument("--notify", choices=NOTIFY_CHOICES,
                   help="when to mail you about " + ("the job" if what == "job" else "each run")
                        + ": never (default), failure, always")


def swept(args) -> dict:
    """The parameters given several values (``-p lr 0.01 0.1 1``): ``{name: [values]}``, a sweep's grid."""
    return {name: [params.resolve_type(v) for v in values] for name, *values in args.parameter if len(values) > 1}


def fields(args) -> dict:
    """The submission's form fields from the options (JSON-encoded where the API takes JSON); when some
    parameter has several values (:func:`swept`), ``parameters`` is a sweep's grid: every other value is
    the one value of its list."""
    grid = swept(args)
    try:
        parameters = params.collect(args.parameters, args.parameters_file, args.parameters_yaml,
                                    [(name, values[0]) for name, *values in args.parameter], args.parameter_raw)
    except params.ParameterError as e:
        raise UserError(str(e)) from None
    if grid:
        parameters = {name: grid.get(name, [value]) for name, value in parameters.items()}
    out = {}
    if parameters is not None:
        out["parameters"] = json.dumps(parameters)
    for key in ("name", "resources", "timeout", "callback_url", "output_formats", "entry", "notify", "environment"):
        value = getattr(args, key)
        if value is not None:
            out[key] = str(value)
    if args.requirements is not None:
        try:
            with open(args.requirements, encoding="utf-8") as f:
                out["requirements"] = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"cannot read the requirements file {args.requirements}: {e}") from None
    return out
