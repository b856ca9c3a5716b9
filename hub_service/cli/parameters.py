"""Job parameters from the command line, taken the way ``papermill``'s own CLI takes them.

``-p NAME VALUE`` (repeatable; ``True``/``False``/``None``, integers and floats become
those, anything else stays a string), ``-r NAME VALUE`` (always a string), ``-y YAML``
and ``-f FILE`` (a YAML or JSON mapping), plus ``--parameters JSON``. Later sources win
over earlier ones in papermill's order: ``--parameters``, ``-f``, ``-y``, ``-p``, ``-r``.
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Optional

import yaml


class ParameterError(ValueError):
    """A parameter option that cannot be read; ``str()`` names the option and the problem."""


class _NoDatesSafeLoader(yaml.SafeLoader):
    """papermill's YAML loader: a date stays a string, as it would in the notebook's JSON."""

    yaml_implicit_resolvers = {
        k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def resolve_type(value: str):
    """A ``-p`` value as papermill's CLI reads it (its ``_resolve_type``)."""
    if value == "True":
        return True
    if value == "False":
        return False
    if value == "None":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _mapping(text: str, what: str, loads) -> dict:
    try:
        value = loads(text)
    except (ValueError, yaml.YAMLError) as e:
        raise ParameterError(f"{what} is not valid: {_one_line(e)}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParameterError(f"{what} must be a mapping of names to values, not {type(value).__name__}")
    return value


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def collect(
    json_text: Optional[str] = None,
    files: Iterable[str] = (),
    yamls: Iterable[str] = (),
    pairs: Iterable[tuple] = (),
    raw_pairs: Iterable[tuple] = (),
) -> Optional[dict]:
    """The parameters all the options give together; None when no option gave any."""
    given = json_text is not None
    result: dict = {}
    if json_text is not None:
        result.update(_mapping(json_text, "--parameters (JSON)", json.loads))
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ParameterError(f"-f {path}: {e.strerror or e}") from None
        result.update(_mapping(text, f"-f {path}", lambda t: yaml.load(t, Loader=_NoDatesSafeLoader)))
        given = True
    for text in yamls:
        result.update(_mapping(text, f"-y {text!r}", lambda t: yaml.load(t, Loader=_NoDatesSafeLoader)))
        given = True
    for name, value in pairs:
        result[name] = resolve_type(value)
        given = True
    for name, value in raw_pairs:
        result[name] = value
        given = True
    return result if given else None


def describe(path: str) -> str:
    """The parameters a notebook or script declares, as ``papermill --help-notebook`` lists them."""
    from ..intake import IntakeError, expected_type, parameter_fields, parse_notebook, parse_script

    name = os.path.basename(path)
    parse = {".ipynb": parse_notebook, ".py": parse_script}.get(os.path.splitext(path)[1].lower())
    if parse is None:
        raise ParameterError(f"--help-notebook reads a .ipynb or .py file, not {name}")
    import nbformat

    try:
        with open(path, "rb") as f:
            nb = parse(f.read(), name)
        # parse_script leaves each cell's source a list of lines, which papermill cannot inspect
        fields = parameter_fields(nbformat.reads(nbformat.writes(nb), as_version=4))
    except OSError as e:
        raise ParameterError(f"cannot read {path}: {e.strerror or e}") from None
    except IntakeError as e:
        raise ParameterError(e.message) from None
    lines = [f"Parameters inferred for notebook '{name}':"]
    if fields is None:
        lines.append("  No cell tagged 'parameters'")
    for field in fields or ():
        # the type the service checks a value against (an int is a fine float): "any" takes all
        kind = expected_type(field) or "any"
        definition = f"  {field['name']}: {kind} (default {field['source']})"
        lines.append(f"{definition:<34}{field['help']}".rstrip() if len(definition) <= 30 or not field["help"]
                     else f"{definition}\n{' ' * 34}{field['help']}")
    return "\n".join(lines)
