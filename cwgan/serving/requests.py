"""Checking the server's requests: JSON bodies and query strings into checked arguments.

Every check raises `RequestError` naming the field (a dotted path such as
`instances[3].noise`) and what is allowed; the server answers it as HTTP 400 (413 for a
body over `MAX_BODY_BYTES`) with `{"error": message, "field": field}`. Sizes are checked
before any work, so a request for 10^9 images costs a comparison.
"""

import math

import numpy as np

from cwgan.sampling.interpolation import MAX_STEPS, class_index
from cwgan.utils.checks import check_int

MAX_BODY_BYTES = 1 << 20  # 1 MiB: 256 predict instances of latent size 100 take ~0.5 MiB.
MAX_IMAGES = 256  # per request; a page shows at most 64, a client batches the rest.
MAX_MORPH_ROWS = 8
MAX_SEED = 2**63 - 1
FORMATS = ("png", "array")


class RequestError(Exception):
    """A request the server refuses: HTTP `status`, the `field` at fault, a message."""

    def __init__(self, field, message, status=400):
        super().__init__(message)
        self.field, self.message, self.status = field, message, status


def _invalid(field, value, expected):
    return RequestError(field, f"Invalid value for `{field}`: {value!r}. Expected {expected}.")


def _short(value, limit=80):
    """`value`'s repr cut to `limit` characters (a 10^6-element list stays a short error)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_keys(body, allowed, required=(), where="body"):
    """Refuses a body that is not a JSON object, lacks a required key or has an unknown
    one (a typo such as `"sed"` would otherwise be silently ignored)."""
    if not isinstance(body, dict):
        raise RequestError(where, f"Expected a JSON object for `{where}`, got "
                                  f"{type(body).__name__}.")
    for key in required:
        if key not in body:
            raise RequestError(key if where == "body" else f"{where}.{key}",
                               f"Missing `{key}`: required here (allowed keys: "
                               f"{sorted(allowed)}).")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise RequestError(unknown[0] if where == "body" else f"{where}.{unknown[0]}",
                           f"Unknown key {unknown[0]!r}; allowed keys: {sorted(allowed)}.")
    return body


def _whole(value):
    """A whole JSON number (7.0) or a query string's digits ("7", "-3") as an int; any
    other value as it is."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def request_int(field, value, minimum, maximum):
    """An int in `minimum..maximum` by `cwgan.utils.checks.check_int`'s rule, after
    `_whole`; the error names the request's field."""
    try:
        return check_int(field, _whole(value), minimum, maximum)
    except ValueError:
        raise _invalid(field, _Raw(value), f"an integer in {minimum}..{maximum}") from None


class _Raw:
    """Shows a value in an error by its (cut) repr."""

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return _short(self.value)


def check_seed(field, value):
    """None (the server draws one and returns it) or an int in 0..2^63-1."""
    return None if value is None else request_int(field, value, 0, MAX_SEED)


def check_format(value):
    if value not in FORMATS:
        raise _invalid("format", _Raw(value), f"one of {list(FORMATS)}")
    return value


def check_class(field, value, info):
    """A class index or name (as `cwgan.sample` takes it) of a class the generator was
    trained on, as its index (`cwgan.sampling.interpolation.class_index`'s check). A digit string
    from a query is the class of that name, or the index it reads as."""
    if isinstance(value, str) and value not in info["class_names"] and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        return class_index(field, value, info)
    except ValueError as e:
        raise RequestError(field, str(e)) from None


def sample_args(body, info):
    """`POST /api/sample` (or the query of `GET /api/sample.png`) as `(labels, seed,
    format)`.

    `label` is one class (with `n` images of it, 1..MAX_IMAGES) or a list of classes (one
    image each, `n` absent or 1), as `cwgan.sample` takes them.
    """
    check_keys(body, {"label", "n", "seed", "format"}, required=("label",))
    label = body["label"]
    if isinstance(label, list):
        if not 1 <= len(label) <= MAX_IMAGES:
            raise _invalid("label", _Raw(label),
                           f"a class, or a list of 1..{MAX_IMAGES} classes")
        if body.get("n", 1) not in (1, "1"):
            raise _invalid("n", _Raw(body["n"]), "1 (or nothing) with a list of labels: the "
                           "list gives one image per entry")
        labels = [check_class(f"label[{i}]", v, info) for i, v in enumerate(label)]
    else:
        n = request_int("n", body.get("n", 1), 1, MAX_IMAGES)
        labels = [check_class("label", label, info)] * n
    return (np.asarray(labels, np.int32), check_seed("seed", body.get("seed")),
            check_format(body.get("format", "png")))


def morph_args(body, info):
    """`POST /api/morph` as `(from, to, steps, n, seed, format)`: a class morph as
    `cwgan.class_morph` draws it (steps 2..32, rows n 1..MAX_MORPH_ROWS)."""
    check_keys(body, {"from_label", "to_label", "steps", "n", "seed", "format"},
               required=("from_label", "to_label"))
    label_from = check_class("from_label", body["from_label"], info)
    label_to = check_class("to_label", body["to_label"], info)
    if label_to == label_from:
        raise _invalid("to_label", _Raw(body["to_label"]),
                       f"a class other than from_label={body['from_label']!r}")
    return (label_from, label_to, request_int("steps", body.get("steps", 8), 2, MAX_STEPS),
            request_int("n", body.get("n", 1), 1, MAX_MORPH_ROWS),
            check_seed("seed", body.get("seed")), check_format(body.get("format", "png")))


def _noise(field, value, latent_dim):
    if not isinstance(value, list) or len(value) != latent_dim:
        length = f" of length {len(value)}" if isinstance(value, list) else ""
        raise RequestError(field, f"Invalid value for `{field}`: {_short(value)}{length}. "
                                  f"Expected a list of {latent_dim} numbers (latent_dim).")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
               for v in value):
        raise _invalid(field, _Raw(value), f"{latent_dim} finite numbers")
    return value


def _instance_count(field, count):
    if not 1 <= count <= MAX_IMAGES:
        raise RequestError(field, f"Invalid value for `{field}`: {count} instances. "
                                  f"Expected 1..{MAX_IMAGES} per request.")


def predict_args(body, info):
    """`POST /v1/models/<name>:predict` in TensorFlow Serving's REST format, as `(noise,
    labels, row_format)`.

    Row format: `{"instances": [{"label": 7, "noise": [...]}, ...]}`; columnar:
    `{"inputs": {"label": [...], "noise": [[...], ...]}}`; an optional
    `"signature_name"` must be "serving_default" (the export's one signature).
    """
    if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
        raise RequestError("instances", 'Expected a JSON object with exactly one of '
                                        '"instances" (row format) or "inputs" (columnar).')
    check_keys(body, {"instances", "inputs", "signature_name"})
    if body.get("signature_name", "serving_default") != "serving_default":
        raise _invalid("signature_name", _Raw(body["signature_name"]), '"serving_default"')
    latent_dim = info["latent_dim"]
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise _invalid("instances", _Raw(instances), "a list of objects")
        _instance_count("instances", len(instances))
        labels, noise = [], []
        for i, instance in enumerate(instances):
            where = f"instances[{i}]"
            check_keys(instance, {"label", "noise"}, required=("label", "noise"), where=where)
            labels.append(check_class(f"{where}.label", instance["label"], info))
            noise.append(_noise(f"{where}.noise", instance["noise"], latent_dim))
    else:
        inputs = check_keys(body["inputs"], {"label", "noise"}, required=("label", "noise"),
                            where="inputs")
        for key in ("label", "noise"):
            if not isinstance(inputs[key], list):
                raise _invalid(f"inputs.{key}", _Raw(inputs[key]), "a list")
        _instance_count("inputs.label", len(inputs["label"]))
        if len(inputs["noise"]) != len(inputs["label"]):
            raise RequestError("inputs.noise", f"`inputs.noise` has {len(inputs['noise'])} "
                                               f"rows for {len(inputs['label'])} labels; "
                                               "expected one row per label.")
        labels = [check_class(f"inputs.label[{i}]", v, info)
                  for i, v in enumerate(inputs["label"])]
        noise = [_noise(f"inputs.noise[{i}]", v, latent_dim)
                 for i, v in enumerate(inputs["noise"])]
    return (np.asarray(noise, np.float32), np.asarray(labels, np.int32),
            "instances" in body)
