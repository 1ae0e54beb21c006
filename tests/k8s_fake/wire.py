# -*- coding: utf-8 -*-
"""Content negotiation (the Accept list) and the little protobuf kubectl's typed clients send.

kubectl's typed clients ask for application/vnd.kubernetes.protobuf first and accept JSON; they
also send some request bodies as protobuf (DeleteOptions on `drain --disable-eviction`). The fake
answers JSON and decodes just the protobuf messages it receives: DeleteOptions and Eviction.
"""

from __future__ import annotations

PROTOBUF = 'application/vnd.kubernetes.protobuf'
PROTOBUF_MAGIC = b'k8s\x00'


def parse_accept(header):
    """'a/b;q=0.5;g=x,c/d' -> [(media_type, {param: value})] best first (q, then order)."""
    entries = []
    for index, part in enumerate((header or '').split(',')):
        pieces = [p.strip() for p in part.split(';')]
        if not pieces[0]:
            continue
        params = {}
        for piece in pieces[1:]:
            if '=' in piece:
                key, value = piece.split('=', 1)
                params[key.strip().lower()] = value.strip()
        try:
            quality = float(params.pop('q', '1'))
        except ValueError:
            quality = 1.0
        entries.append((-quality, index, pieces[0].lower(), params))
    entries.sort()
    return [(media, params) for _q, _i, media, params in entries if _q < 0]


def media_type(header):
    return (header or '').split(';')[0].strip().lower()


# ---------------------------------------------------------------- protobuf

def _varint(data, pos):
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7f) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data):
    """Decode one message into {field number: [values]} (varints as int, length-delimited as bytes)."""
    fields = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _varint(data, pos)
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            value = data[pos:pos + length]
            pos += length
        elif wire_type == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire_type == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError('unsupported protobuf wire type %d' % wire_type)
        fields.setdefault(number, []).append(value)
    return fields


def _text(fields, number):
    values = fields.get(number)
    return values[-1].decode('utf-8') if values else None


def _int64(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def _delete_options(data):
    fields = _fields(data)
    options = {}
    if 1 in fields:
        options['gracePeriodSeconds'] = _int64(fields[1][-1])
    if 2 in fields:
        pre = _fields(fields[2][-1])
        options['preconditions'] = {k: v for k, v in (('uid', _text(pre, 1)), ('resourceVersion', _text(pre, 2)))
                                    if v is not None}
    if 3 in fields:
        options['orphanDependents'] = bool(fields[3][-1])
    if 4 in fields:
        options['propagationPolicy'] = _text(fields, 4)
    if 5 in fields:
        options['dryRun'] = [v.decode('utf-8') for v in fields[5]]
    return options


def decode_protobuf(body):
    """A k8s protobuf envelope holding DeleteOptions or Eviction -> the JSON-shaped dict; ValueError otherwise."""
    if not body.startswith(PROTOBUF_MAGIC):
        raise ValueError('not a Kubernetes protobuf envelope')
    try:
        unknown = _fields(body[len(PROTOBUF_MAGIC):])
        type_meta = _fields(unknown[1][-1]) if 1 in unknown else {}
        api_version, kind = _text(type_meta, 1), _text(type_meta, 2)
        raw = unknown.get(2, [b''])[-1]
        if kind == 'DeleteOptions':
            result = _delete_options(raw)
        elif kind == 'Eviction':
            fields = _fields(raw)
            meta = _fields(fields[1][-1]) if 1 in fields else {}
            result = {'metadata': {k: v for k, v in (('name', _text(meta, 1)), ('namespace', _text(meta, 3)))
                                   if v is not None}}
            if 2 in fields:
                result['deleteOptions'] = _delete_options(fields[2][-1])
        else:
            raise ValueError('the fake decodes no protobuf %s' % kind)
    except (IndexError, KeyError, UnicodeDecodeError) as exc:
        raise ValueError('malformed protobuf body: %s' % exc) from exc
    result.update({'kind': kind, 'apiVersion': api_version})
    return result
