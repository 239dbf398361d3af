"""A faster `Schema.dump` for the plain shapes the API answers, with the same result.

marshmallow walks every field through several layers of calls (about 70 us for an
allegation). `compile_dump(schema)` builds, once, a function that copies the declared keys of
plain dicts, lists, strings and numbers as marshmallow would. Whenever a value is not of the
exact type it knows the result for (a number in a float field, a tuple for a list, a subclass,
a missing schema feature...), it gives the whole object to `schema.dump` instead, so the
answer is always marshmallow's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from marshmallow import fields as f
from marshmallow import missing

Dump = Callable[[Any], Any]


class _Slow(Exception):  # an internal signal, never escapes this module
    """The value needs marshmallow itself."""


class _Unsupported(Exception):
    """The schema uses a feature the fast path does not reproduce."""


def _str(v: Any) -> Any:
    if v is None or type(v) is str:
        return v
    raise _Slow


def _int(v: Any) -> Any:
    if v is None or type(v) is int:
        return v
    raise _Slow


def _float(v: Any) -> Any:
    if v is None or type(v) is float:
        return v
    raise _Slow


def _same(v: Any) -> Any:  # marshmallow's Field._serialize: the value itself (Boolean)
    return v


def _value(field: ma.fields.Field) -> Dump:  # type: ignore[type-arg]
    """The converter of one field's value (the field's own `_serialize`)."""
    kind = type(field)
    if kind is f.String:
        return _str
    if kind is f.Integer and not field.as_string:  # type: ignore[attr-defined]
        return _int
    if kind is f.Float and not field.as_string:  # type: ignore[attr-defined]
        return _float
    if kind is f.Boolean:
        return _same
    if kind is f.List:
        inner = _value(field.inner)  # type: ignore[attr-defined]

        def many(v: Any) -> Any:
            if v is None:
                return None
            if type(v) is not list:
                raise _Slow
            return [inner(x) for x in v]

        return many
    if kind is f.Nested:
        if field.many or field.schema.many:  # type: ignore[attr-defined]
            raise _Unsupported(field)
        nested = _object(field.schema)  # type: ignore[attr-defined]

        def one(v: Any) -> Any:
            return None if v is None else nested(v)

        return one
    if kind is f.Dict:
        key = field.key_field  # type: ignore[attr-defined]
        value = field.value_field  # type: ignore[attr-defined]
        if key is not None and type(key) is not f.String:
            raise _Unsupported(field)
        convert = _same if value is None else _value(value)

        def mapping(v: Any) -> Any:
            if v is None:
                return None
            if type(v) is not dict:
                raise _Slow
            out = {}
            for k, x in v.items():
                if type(k) is not str:
                    raise _Slow
                out[k] = convert(x)
            return out

        return mapping
    raise _Unsupported(field)


def _object(schema: ma.Schema) -> Dump:
    """The converter of a (nested) schema's object: only plain dicts, keys as declared."""
    if (type(schema).get_attribute is not ma.Schema.get_attribute
            or schema.dict_class is not dict or any(schema._hooks.values())):
        raise _Unsupported(schema)
    plan = []
    for name, field in schema.dump_fields.items():
        if (field.attribute is not None or field.dump_default is not missing
                or not field._CHECK_ATTRIBUTE or "." in name or hasattr(dict, name)):
            # A missing key would be looked up as an attribute, or defaulted, or renamed.
            raise _Unsupported(field)
        plan.append((name, field.data_key if field.data_key is not None else name,
                     _value(field)))

    def dump(obj: Any) -> Any:
        if type(obj) is not dict:
            raise _Slow
        out = {}
        for name, key, convert in plan:
            if name in obj:
                out[key] = convert(obj[name])
        return out

    return dump


def compile_dump(schema: ma.Schema) -> Dump:
    """`schema.dump` for one object, faster for plain values; identical results."""
    if schema.many:
        return schema.dump
    try:
        fast = _object(schema)
    except _Unsupported:
        return schema.dump

    def dump(obj: Any) -> Any:
        try:
            return fast(obj)
        except _Slow:
            return schema.dump(obj)

    return dump
