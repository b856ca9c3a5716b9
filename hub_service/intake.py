"""Intake: turn what a user submits into a validated notebook, files and limits, or say why not.

Everything here is pure (bytes and dicts in, values or :class:`IntakeError` out), so
handlers stay thin and every rejection is testable without HTTP. Nothing is stored
until intake has accepted the whole submission: a bad input loses nothing and leaves
nothing half written.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import posixpath
import re
import unicodedata
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import nbformat
from nbformat.warnings import MissingIDFieldWarning

from .explain import size_words
from .names import one_line, refused_characters
from .states import OUTPUT_FORMATS

KINDS = (".ipynb", ".py", ".zip")

# binary signatures worth naming when someone uploads the wrong file
_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a zip archive",
    b"GIF8": "a GIF image",
}

_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_NAME_RE = re.compile(r"^[^/\\\x00-\x1f]{1,200}$")
MAX_NAME = 200

#: deepest JSON nesting a request may carry; notebooks need ~10, and every walk over a
#: parsed document (nbformat, papermill, the store's serializer) recurses once per level
MAX_JSON_DEPTH = 64
#: the largest memory anyone can mean (1 PiB); past 2**53 a JSON client cannot even read it back
MAX_MEMORY = 1 << 50
#: zip compression methods the standard library can unpack
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
                zipfile.ZIP_LZMA: "lzma"}


class IntakeError(Exception):
    """A submission we refuse; ``status`` is the HTTP status, ``message`` says what is wrong.

    ``field`` is the one field of the request it is about, as an RFC 6901 JSON pointer into
    the request as its JSON body spells it (``/resources/memory``, ``/parameters/alpha``;
    a multipart form's field is the same pointer); None when it is about no one field. The
    check that refuses a field names it: nothing reads it back out of the message.
    """

    def __init__(self, message: str, status: int = 400, code: str = "invalid_input", *,
                 field: Optional[str] = None):
        super().__init__(message)
        self.message, self.status, self.code, self.field = message, status, code, field


def pointer(*keys) -> str:
    """The JSON pointer (RFC 6901) of ``keys``: ``pointer("parameters", "a/b")`` is ``/parameters/a~1b``."""
    return "".join("/" + str(k).replace("~", "~0").replace("/", "~1") for k in keys)


@contextmanager
def about(field: str):
    """Inside, the check of one field's value: an IntakeError that names no field is about ``field``.

    For checks made of many smaller ones that know nothing of the request they serve (a
    notebook's parse, a zip's members): ``with about("/notebook"): parse_notebook(…)``.
    """
    try:
        yield
    except IntakeError as e:
        if e.field is None:
            e.field = field
        raise


@dataclass(frozen=True)
class Limits:
    """How much a submission may be: the admin's ``NotebookJobs`` traits of the same names."""

    max_upload_size: int = 32 << 20
    max_parameters_size: int = 64 << 10
    bundle_max_files: int = 1000
    bundle_max_bytes: int = 100 << 20


@dataclass
class Bundle:
    """A normalised submission: the notebook to run and the files it runs beside."""

    notebook: nbformat.NotebookNode
    kind: str  # ipynb | py | zip
    name: str  # the submitted file name (or workspace path)
    files: dict = field(default_factory=dict)  # relative path -> bytes

    @property
    def notebook_bytes(self) -> bytes:
        return nbformat.writes(self.notebook).encode()

    @property
    def sha256(self) -> str:
        """Content hash of the notebook and its files: the key inputs are stored under."""
        h = hashlib.sha256(self.notebook_bytes)
        for path in sorted(self.files):
            h.update(b"\0" + path.encode() + b"\0" + hashlib.sha256(self.files[path]).digest())
        return h.hexdigest()


def _describe_binary(data: bytes) -> Optional[str]:
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            return what
    if b"\x00" in data[:1024]:
        return "binary data"
    return None


def _text(data: bytes, name: str, kind: str) -> str:
    """``data`` as UTF-8 text, or an error that names what it is instead."""
    what = _describe_binary(data)
    if what:
        raise IntakeError(f"{name} is not {kind}: it contains {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise IntakeError(f"{name} is not {kind}: not UTF-8 text") from None


def _refuse_constant(token: str):
    raise ValueError(f"{token} is not a JSON number (only finite numbers are)")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise ValueError(f"{token} is out of range for a number")
    return value


def check_json_value(value, what: str, max_depth: int = MAX_JSON_DEPTH, allow_nan: bool = False,
                     field: Optional[str] = None):
    """Refuse nesting deeper than ``max_depth``, non-finite numbers and strings that are not Unicode text.

    A lone surrogate (``"\\ud800"`` in JSON) decodes to a Python string that cannot be
    encoded as UTF-8, so it would fail later, when it is written or sent back.
    """
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > max_depth:
                raise IntakeError(f"{what} is nested more than {max_depth} levels deep", field=field)
            if isinstance(item, dict):
                for key, child in item.items():
                    stack.append((key, depth))
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as e:
                bad = item[e.start:e.end].encode("unicode_escape").decode()
                raise IntakeError(f"{what} contains {bad}, which is not a Unicode character "
                                  "(a lone surrogate)", field=field) from None
        elif isinstance(item, float) and not allow_nan and not math.isfinite(item):
            raise IntakeError(f"{what} contains the non-finite number {item}; JSON numbers are finite", field=field)
    return value


def load_json(text, what: str, max_depth: int = MAX_JSON_DEPTH, allow_nan: bool = False,
              field: Optional[str] = None):
    """Strict JSON: no NaN or Infinity (unless ``allow_nan``), bounded nesting, only real Unicode strings;
    ``field``: the field of a request the text is (None: the whole body)."""
    extra = {} if allow_nan else {"parse_constant": _refuse_constant, "parse_float": _finite_float}
    try:
        value = json.loads(text, **extra)
    except RecursionError:
        raise IntakeError(f"{what} is nested more than {max_depth} levels deep", field=field) from None
    except ValueError as e:  # also UnicodeDecodeError: bytes that are not UTF-8
        raise IntakeError(f"{what} is not valid JSON: {e}", field=field) from None
    return check_json_value(value, what, max_depth, allow_nan, field)


def parse_notebook(data: bytes, name: str) -> nbformat.NotebookNode:
    """Decode and schema-validate .ipynb bytes."""
    text = _text(data, name, "a notebook")
    try:
        raw = json.loads(text)
    except RecursionError:
        raise IntakeError(f"{name} is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as e:
        raise IntakeError(f"{name} is not a notebook: invalid JSON ({e})") from None
    # Jupyter itself may write NaN into a notebook; it is kept as a file, never as API data
    check_json_value(raw, name, allow_nan=True)
    if not isinstance(raw, dict) or "cells" not in raw:
        raise IntakeError(f"{name} is not a notebook: a JSON object with 'cells' is expected")
    try:
        with warnings.catch_warnings():
            # a hand-made notebook without cell ids is valid (nbformat 4.5 only asks for them); the
            # warning would reach a CLI user's terminal before any answer (papermill adds ids on run)
            warnings.simplefilter("ignore", MissingIDFieldWarning)
            nb = nbformat.reads(json.dumps(raw), as_version=4)
            nbformat.validate(nb)
    except nbformat.ValidationError as e:
        where = "/".join(str(p) for p in getattr(e, "absolute_path", []) or [])
        raise IntakeError(
            f"{name} fails notebook schema validation" + (f" at {where}" if where else "") + f": {e.message}"
        ) from None
    except Exception as e:  # nbformat raises a zoo of errors on odd documents
        raise IntakeError(f"{name} is not a valid notebook: {e}") from None
    return nb


def parse_script(data: bytes, name: str) -> nbformat.NotebookNode:
    """Turn a .py script (plain, percent or light format) into a notebook with jupytext."""
    import jupytext

    text = _text(data, name, "a Python script")
    try:
        compile(text, name, "exec")
    except SyntaxError as e:
        raise IntakeError(f"{name} has a syntax error at line {e.lineno}: {e.msg}") from None
    except (RecursionError, MemoryError):
        raise IntakeError(f"{name} is nested too deeply for Python to compile") from None
    except ValueError as e:  # e.g. NUL bytes past the start
        raise IntakeError(f"{name} is not a Python script: {e}") from None
    try:
        nb = jupytext.reads(text, fmt="py")
    except Exception as e:  # jupytext's parser has no error type of its own
        raise IntakeError(f"{name} could not be turned into a notebook: {e}") from None
    nb.metadata.setdefault(
        "kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"}
    )
    # read back as nbformat does a file: sources become strings (from_dict would keep
    # jupytext's lists, which papermill's parameter inspection cannot read)
    return nbformat.reads(nbformat.writes(nb), as_version=4)


def safe_relpath(path: str, what: str = "path") -> str:
    """A normalised relative POSIX path, refusing absolute paths and any ``..``."""
    if not isinstance(path, str):
        raise IntakeError(f"{what} must be a string, got {type(path).__name__}")
    if not path or "\x00" in path:
        raise IntakeError(f"{what} is empty or contains a NUL byte")
    path = path.replace("\\", "/")
    if path.startswith("/") or re.match(r"^[a-zA-Z]:", path):
        raise IntakeError(f"{what} {path!r} must be relative")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise IntakeError(f"{what} {path!r} must not contain '..'")
    if not parts:
        raise IntakeError(f"{what} {path!r} names no file")
    return posixpath.join(*parts)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    """One member's bytes, or an error naming the member and what is wrong with it."""
    member = f"{name}: member {info.filename!r}"
    if info.flag_bits & 0x1:
        raise IntakeError(f"{member} is encrypted; upload it without a password")
    if info.compress_type not in _ZIP_METHODS:
        raise IntakeError(f"{member} uses compression method {info.compress_type}; "
                          f"use one of {', '.join(_ZIP_METHODS.values())}")
    try:
        with zf.open(info) as f:
            data = f.read(info.file_size + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError, NotImplementedError) as e:
        # bz2/lzma raise OSError, deflate zlib.error, a bad CRC BadZipFile
        raise IntakeError(f"{member} is corrupt: {e}") from None
    if len(data) != info.file_size:
        raise IntakeError(f"{member} unpacks to a different size than the archive says")
    return data


#: longest member path and path component of a bundle (the files are written below the
#: service's data directory, whose file system allows 255 bytes a component)
MAX_MEMBER_PATH, MAX_MEMBER_COMPONENT = 1024, 255


def _check_member_path(rel: str, raw: str, files: dict, name: str) -> None:
    """Refuse a member path too long to write, or one naming a file another member names already."""
    member = f"{name}: member {raw!r}"
    try:
        encoded = rel.encode("utf-8")
    except UnicodeEncodeError:
        raise IntakeError(f"{member} has a name that is not Unicode text") from None
    if len(encoded) > MAX_MEMBER_PATH or any(len(p.encode()) > MAX_MEMBER_COMPONENT for p in rel.split("/")):
        raise IntakeError(f"{member} has a name longer than {MAX_MEMBER_PATH} bytes or a part of it longer "
                          f"than {MAX_MEMBER_COMPONENT}")
    if rel in files:
        raise IntakeError(f"{member} names the file {rel!r} a second time")


def _check_no_file_dir_clash(files: dict, name: str) -> None:
    """Refuse a bundle where one member's path is a directory of another's (``a`` and ``a/b``)."""
    dirs = {rel.rsplit("/", i)[0] for rel in files for i in range(1, rel.count("/") + 1)}
    clash = sorted(dirs & set(files))
    if clash:
        raise IntakeError(f"{name}: member {clash[0]!r} is a file, and other members are inside it as a directory")


def parse_bundle(data: bytes, name: str, entry: Optional[str], max_members: int, max_bytes: int) -> Bundle:
    """Unpack a .zip bundle safely (zip-slip, member and size limits) and pick its entry."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError, NotImplementedError):
        raise IntakeError(f"{name} is not a valid zip archive") from None
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > max_members:
        raise IntakeError(f"{name} has {len(infos)} files; at most {max_members} are allowed", 413, "too_large")
    total = sum(i.file_size for i in infos)
    if total > max_bytes:
        raise IntakeError(f"{name} unpacks to {total} bytes; at most {max_bytes} are allowed", 413, "too_large")
    files = {}
    for info in infos:
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise IntakeError(f"{name}: member {info.filename!r} is a symbolic link")
        rel = safe_relpath(info.filename, f"{name}: member")
        if rel.startswith("__MACOSX/"):
            continue
        _check_member_path(rel, info.filename, files, name)
        files[rel] = _read_member(zf, info, name)
    _check_no_file_dir_clash(files, name)
    if entry:
        with about("/entry"):
            entry = safe_relpath(entry, "entry")
        if entry not in files:
            raise IntakeError(f"entry {entry!r} is not in {name}; it holds {', '.join(sorted(files)[:20])}",
                              field="/entry")
    else:
        candidates = [p for p in ("main.ipynb", "main.py") if p in files] or [
            p for p in files if "/" not in p and p.endswith((".ipynb", ".py"))
        ]
        if len(candidates) != 1:
            raise IntakeError(
                f"{name}: say which file to run with 'entry' (found {len(candidates)} candidates at the top level)",
                field="/entry")
        entry = candidates[0]
    source = files.pop(entry)
    nb = parse_notebook(source, entry) if entry.endswith(".ipynb") else parse_script(source, entry)
    return Bundle(nb, "zip", name, files)


def read_submission(
    filename: str, data: bytes, *, entry: Optional[str] = None, max_members: int = 1000, max_bytes: int = 100 << 20
) -> Bundle:
    """Dispatch on the file name's suffix to the right parser.

    The bundle is named by the file name made fit for a name (:func:`clean_name`): an
    upload's file name is the client's to choose (RFC 2231 lets it carry any character).
    """
    filename = posixpath.basename(safe_relpath(filename, "file name"))
    suffix = Path(filename).suffix.lower()
    filename = clean_name(filename, "upload" + suffix)
    if suffix == ".ipynb":
        return Bundle(parse_notebook(data, filename), "ipynb", filename)
    if suffix == ".py":
        return Bundle(parse_script(data, filename), "py", filename)
    if suffix == ".zip":
        return parse_bundle(data, filename, entry, max_members, max_bytes)
    raise IntakeError(f"{filename}: unsupported file type {suffix or '(none)'}; expected one of {', '.join(KINDS)}", 415,
                      "unsupported_type")


def notebook_parameters(nb: nbformat.NotebookNode) -> Optional[dict]:
    """Names and defaults of the ``parameters`` cell (None when the notebook has none)."""
    from papermill.inspection import _infer_parameters

    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        return None
    nb = copy.deepcopy(nb)
    for cell in nb.cells:  # papermill expects every cell to carry a tags list
        cell.metadata.setdefault("tags", [])
    return {p.name: {"type": p.inferred_type_name, "default": p.default, "help": p.help} for p in _infer_parameters(nb)}


#: the input a form shows for a parameter, by its value's Python type (``expr``: not a literal)
_FIELD_TYPES = {bool: "bool", int: "int", float: "float", str: "str", type(None): "none", list: "json", dict: "json"}
PARAMETER_TYPES = ("int", "float", "bool", "str", "none", "json", "expr")


def _jsonable(value):
    """A literal as JSON would carry it (tuples as lists), or raise ValueError."""
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("non-string key")
        return {k: _jsonable(v) for k, v in value.items()}
    if type(value) not in _FIELD_TYPES or (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError(f"not JSON: {type(value).__name__}")
    return value


def parameter_fields(nb: nbformat.NotebookNode) -> Optional[list]:
    """The ``parameters`` cell as form fields: name, type, value, source, help (None without the cell).

    ``value`` is the default as JSON when it is a plain Python literal; otherwise (``n = 2 ** 10``)
    the type is ``expr`` and only ``source`` says what the cell holds. An annotation
    (``alpha: float = 1``) decides the type where it names one a form can show.
    """
    import ast

    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not tagged:
        return None
    # papermill reads the first tagged cell: inspect a notebook of that cell alone (a dry run
    # asks on every change of a form, and the notebook may carry megabytes of outputs)
    small = nbformat.v4.new_notebook(metadata=copy.deepcopy(nb.metadata), cells=[copy.deepcopy(tagged[0])])
    small.metadata.setdefault("kernelspec", {"name": "python3", "language": "python", "display_name": "Python 3"})
    declared = notebook_parameters(small)
    if declared is None:
        return None
    fields = []
    for name, p in declared.items():
        source = p["default"]
        try:
            value = _jsonable(ast.literal_eval(source))
            kind = _FIELD_TYPES[type(value)]
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value, kind = None, "expr"
        if p["type"] in ("int", "float", "bool", "str") and kind not in ("expr", p["type"]):
            kind = "float" if p["type"] == "float" and kind == "int" else kind
        fields.append({"name": name, "type": kind, "value": value, "source": source, "help": p["help"],
                       "annotation": None if p["type"] in (None, "None") else p["type"]})
    return fields


#: annotations that say a parameter takes a value of any type, on purpose
ANY_TYPE = frozenset({"Any", "typing.Any", "object"})
#: what a value of each kind may be: a whole number is a fine float, a bool is no number
_ACCEPTS = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
}
_ARTICLE = {"int": "an int", "float": "a float", "bool": "a bool", "str": "a str", "list": "a list", "dict": "a dict"}


def expected_type(field: dict) -> Optional[str]:
    """The kind a parameter's value must be (a key of ``_ACCEPTS``), or None for any.

    An annotation the check knows (``rows: int = 10``) decides; else the default's literal
    type. ``None`` and expressions as defaults, and ``Any``/``object`` annotations, take any
    value: that is how a notebook says it wants values of another type on purpose.
    """
    annotation = field.get("annotation")
    if annotation in ANY_TYPE:
        return None
    if annotation in _ACCEPTS:
        return annotation
    if field["type"] == "json":
        return "list" if isinstance(field["value"], list) else "dict"
    return field["type"] if field["type"] in _ACCEPTS else None


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _described(value) -> str:
    """``a str 'abc'``, ``a float 1.5``, ``None``: a value and its type, for a message."""
    if value is None:
        return "None"
    kind = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}.get(type(value))
    return f"{_ARTICLE[kind]} {_short(value)}" if kind else _short(value)


def check_parameters(nb: nbformat.NotebookNode, parameters, max_size: Optional[int] = None) -> dict:
    """Refuse parameters the notebook's ``parameters`` cell does not declare, or of another type.

    Each value must be of its parameter's type (:func:`expected_type`), an int for a float
    too; the whole of them, as JSON, at most ``max_size`` bytes.
    """
    if parameters in (None, ""):
        return {}
    if not isinstance(parameters, dict):
        raise IntakeError("parameters must be a JSON object of name: value", field="/parameters")
    if not parameters:
        return {}
    if max_size is not None:
        size = len(json.dumps(parameters).encode())
        if size > max_size:
            biggest = max(parameters, key=lambda k: len(json.dumps(parameters[k])))
            raise IntakeError(
                f"parameters take {size_words(size)}, more than the limit of {size_words(max_size)} "
                f"(the largest is {_short(biggest)}): pass large data as a file in a .zip bundle instead",
                413, "too_large", field="/parameters")
    fields = parameter_fields(nb)
    if fields is None:
        raise IntakeError(
            f"the notebook has no cell tagged 'parameters', so it takes no parameters (got {', '.join(sorted(parameters))})",
            field="/parameters")
    known = {f["name"]: f for f in fields}
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise IntakeError(
            f"unknown parameter(s) {', '.join(unknown)}; the notebook's parameters are: "
            f"{', '.join(sorted(known)) or '(none)'}",
            field=pointer("parameters", unknown[0]) if len(unknown) == 1 else "/parameters")
    for name, value in parameters.items():
        kind = expected_type(known[name])
        # None is papermill's "no value", taken by any parameter (``-p limit None``)
        if kind is not None and value is not None and not _ACCEPTS[kind](value):
            raise IntakeError(
                f"parameter {name} must be {_ARTICLE[kind]} (the notebook's {name} = {_clip(known[name]['source'])}), "
                f"got {_described(value)}", field=pointer("parameters", name))
    return parameters



def parse_memory(value, what: str = "memory", field: str = "/resources/memory") -> int:
    """Bytes from 512MB / 2GB / 2g / 512m / 1.5GiB / a number of bytes (units are binary)."""
    with about(field):
        return _memory(value, what)


def _memory(value, what: str) -> int:
    if isinstance(value, bool):
        raise IntakeError(f"{what} must be a size like '512MB' or a number of bytes")
    if isinstance(value, (int, float)):
        size = value
    else:
        m = _MEMORY_RE.match(str(value)) if isinstance(value, str) else None
        if not m or m.group(2).lower() not in _UNITS:
            raise IntakeError(f"{what} {value!r} is not a size: use e.g. '512MB', '2GB', '2g' or bytes")
        size = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if isinstance(size, float) and math.isnan(size):
        raise IntakeError(f"{what} must be a finite number, got {_short(value)}")
    if size > MAX_MEMORY:  # also inf, and ints too long for a float
        raise IntakeError(f"{what} {_short(value)} is more than {MAX_MEMORY >> 50} PiB")
    if int(size) <= 0:
        raise IntakeError(f"{what} must be positive")
    return int(size)


def _short(value, limit: int = 40) -> str:
    """``value`` for an error message, cut short: a 400-digit number need not come back whole."""
    return _clip(repr(value), limit)


def _positive_number(value, what: str, integer: bool = False, allow_zero: bool = False, *, field: str):
    with about(field):
        return _number(value, what, integer, allow_zero)


def _number(value, what: str, integer: bool, allow_zero: bool):
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise IntakeError(f"{what} must be a {'whole ' if integer else ''}number, got {_short(value)}") from None
    if not math.isfinite(number):
        raise IntakeError(f"{what} must be a finite number, got {_short(value)}")
    if integer:
        if number != int(number):
            raise IntakeError(f"{what} must be a whole number, got {_short(value)}")
        number = int(number)
    if number < 0 or (number == 0 and not allow_zero):
        raise IntakeError(f"{what} must be {'zero or more' if allow_zero else 'positive'}, got {_short(value)}")
    return number


def parse_resources(resources, timeout=None) -> dict:
    """Normalise a ``resources`` object (+ ``timeout``) into {cpu, memory, gpu, timeout}; omitted keys are absent."""
    if resources in (None, ""):
        resources = {}
    if not isinstance(resources, dict):
        raise IntakeError("resources must be a JSON object like {\"cpu\": 1.5, \"memory\": \"2GB\"}",
                          field="/resources")
    unknown = sorted(set(resources) - {"cpu", "memory", "ram", "gpu", "timeout"})
    if unknown:
        raise IntakeError(f"unknown resource(s) {', '.join(unknown)}; known: cpu, memory, gpu, timeout",
                          field=pointer("resources", unknown[0]) if len(unknown) == 1 else "/resources")
    out = {}
    if resources.get("cpu") is not None:
        out["cpu"] = float(_positive_number(resources["cpu"], "resources.cpu", field="/resources/cpu"))
    memory_key = "memory" if "memory" in resources else "ram"  # 'ram' is the seeds' name
    if resources.get(memory_key) is not None:
        out["memory"] = parse_memory(resources[memory_key], "resources.memory", pointer("resources", memory_key))
    if resources.get("gpu") is not None:
        out["gpu"] = _positive_number(resources["gpu"], "resources.gpu", integer=True, allow_zero=True,
                                      field="/resources/gpu")
    timeout_field = "/timeout"
    if timeout in (None, ""):
        timeout, timeout_field = resources.get("timeout"), "/resources/timeout"
    if timeout is not None:
        out["timeout"] = float(_positive_number(timeout, "timeout", field=timeout_field))
    return out


def parse_output_formats(value) -> list:
    """The renders to make eagerly; ipynb is always kept."""
    if value in (None, ""):
        return list(OUTPUT_FORMATS)
    if isinstance(value, str) and value.lstrip().startswith("["):  # a JSON list in a form field
        value = parse_json_field(value, "output_formats")
    elif isinstance(value, str):  # "html,md"
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise IntakeError("output_formats must be a list like [\"html\", \"md\"]", field="/output_formats")
    bad = sorted(set(value) - set(OUTPUT_FORMATS))
    if bad:
        raise IntakeError(f"unknown output format(s) {', '.join(bad)}; known: {', '.join(OUTPUT_FORMATS)}",
                          field="/output_formats")
    return sorted(set(value) | {"ipynb"}, key=OUTPUT_FORMATS.index)


def clean_name(text, fallback: str = "notebook") -> str:
    """A name made from a file name or workspace path: one line (:func:`names.one_line`), cut to
    :data:`MAX_NAME` characters.

    The one name rule for names the user did not type (an explicit ``name`` that breaks it
    is refused by :func:`check_name` instead); also what a download's file name is made from.
    """
    return one_line(text if isinstance(text, str) else "")[:MAX_NAME].strip() or fallback


def check_name(name, default: str) -> str:
    """A job's display name: one line, no path separators, no control or format characters.

    Given (``name``), a name that breaks the rule is refused, saying which character;
    missing, the name is ``default`` (the file name or workspace path) made fit by
    :func:`clean_name`. Every way a job or schedule gets its name passes here.
    """
    if name in (None, ""):
        return clean_name(default)
    if not isinstance(name, str):
        raise IntakeError(f"name must be a string, got {type(name).__name__}", field="/name")
    check_json_value(name, "name", field="/name")
    refused = refused_characters(name)
    if refused:
        which = ", ".join(f"U+{ord(c):04X} ({unicodedata.name(c, '') or 'a control character'})"
                          for c in refused[:5])
        raise IntakeError(f"name {_short(name)} must not contain control, format or line-break characters; "
                          f"it holds {which}", field="/name")
    if not _NAME_RE.match(name) or ".." in name:
        raise IntakeError(f"name {_short(name)} must be 1-{MAX_NAME} characters without '/', '\\', '..' "
                          "or control characters", field="/name")
    return name


def check_callback_url(url) -> Optional[str]:
    """A webhook URL: http(s) only."""
    if url in (None, ""):
        return None
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+(/\S*)?$", url):
        raise IntakeError(f"callback_url {url!r} must be an http(s) URL", field="/callback_url")
    return url


#: when a job's owner is mailed about it: never, when it fails, or whenever it ends
NOTIFY_CHOICES = ("never", "failure", "always")


def check_choice(value, what: str, choices: tuple) -> str:
    """One of ``choices`` (the first when missing), or IntakeError naming ``what`` (the field ``/what``)."""
    if value in (None, ""):
        return choices[0]
    if value not in choices:
        raise IntakeError(f"{what} {str(value)[:60]!r} must be one of {', '.join(choices)}", field=pointer(what))
    return value


def check_notify(value) -> str:
    """The ``notify`` field: one of :data:`NOTIFY_CHOICES` (``never`` when missing)."""
    return check_choice(value, "notify", NOTIFY_CHOICES)


def parse_json_field(value, what: str):
    """A form field that carries JSON (parameters, resources): the field ``/what``."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):  # already parsed (a JSON body): the field's own check says what is wrong
        return check_json_value(value, what, field=pointer(what))
    return load_json(value, what, field=pointer(what))
