# -*- coding: utf-8 -*-
"""Label and field selectors and the three patch formats, as the real API server applies them."""

from __future__ import annotations

import copy
import re


class PatchError(ValueError):
    """A patch that cannot be applied (the server answers 422 or 400)."""


# ---------------------------------------------------------------- selectors

_TERM_SPLIT = re.compile(r',(?![^()]*\))')
_SET_TERM = re.compile(r'^\s*([^\s!=]+)\s+(in|notin)\s+\((.*)\)\s*$')
_EQ_TERM = re.compile(r'^\s*([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)\s*$')


def parse_label_selector(text):
    """'a=b,c!=d,e in (f,g),!h,i' -> list of (key, op, values); ValueError on bad syntax."""
    terms = []
    for raw in _TERM_SPLIT.split(text or ''):
        raw = raw.strip()
        if not raw:
            continue
        match = _SET_TERM.match(raw)
        if match:
            values = [v.strip() for v in match.group(3).split(',') if v.strip()]
            terms.append((match.group(1), match.group(2), values))
            continue
        match = _EQ_TERM.match(raw)
        if match:
            op = '!=' if match.group(2) == '!=' else '='
            terms.append((match.group(1), op, [match.group(3)]))
            continue
        if raw.startswith('!') and re.match(r'^![^\s!=(),]+$', raw):
            terms.append((raw[1:], '!', []))
            continue
        if re.match(r'^[^\s!=(),]+$', raw):
            terms.append((raw, 'exists', []))
            continue
        raise ValueError('unable to parse requirement: %r' % raw)
    return terms


def labels_match(terms, labels):
    labels = labels or {}
    for key, op, values in terms:
        present = key in labels
        value = labels.get(key)
        if op == '=' and value != values[0]:
            return False
        if op == '!=' and present and value == values[0]:
            return False
        if op == 'in' and value not in values:
            return False
        if op == 'notin' and present and value in values:
            return False
        if op == 'exists' and not present:
            return False
        if op == '!' and present:
            return False
    return True


def parse_field_selector(text, supported):
    """'spec.nodeName=n1,metadata.name!=x' -> list of (field, op, value); ValueError if unsupported."""
    terms = []
    for raw in (text or '').split(','):
        raw = raw.strip()
        if not raw:
            continue
        match = re.match(r'^([^=!]+)(==|=|!=)(.*)$', raw)
        if not match:
            raise ValueError('invalid selector: %r; can\'t understand %r' % (text, raw))
        field, op, value = match.group(1).strip(), match.group(2), match.group(3).strip()
        if field not in supported:
            raise ValueError('field label not supported: %s' % field)
        terms.append((field, '!=' if op == '!=' else '=', value))
    return terms


# boolean fields the API's field sets print as "false" when unset
BOOLEAN_FIELDS = {'spec.unschedulable', 'spec.hostNetwork'}


def field_value(obj, dotted):
    value = obj
    for part in dotted.split('.'):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return 'false' if dotted in BOOLEAN_FIELDS else ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def fields_match(terms, obj):
    for field, op, value in terms:
        actual = field_value(obj, field)
        if (actual == value) != (op == '='):
            return False
    return True


def selector_matches(selector, labels):
    """A LabelSelector object (matchLabels + matchExpressions); an empty one matches everything."""
    selector = selector or {}
    labels = labels or {}
    for key, value in (selector.get('matchLabels') or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get('matchExpressions') or []:
        key, op, values = expr.get('key'), expr.get('operator'), expr.get('values') or []
        if op == 'In' and labels.get(key) not in values:
            return False
        if op == 'NotIn' and key in labels and labels[key] in values:
            return False
        if op == 'Exists' and key not in labels:
            return False
        if op == 'DoesNotExist' and key in labels:
            return False
    return True


# ---------------------------------------------------------------- patches

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch: objects merge, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# patchMergeKey of the list fields a node, pod, lease or PDB has (from the Go struct tags)
MERGE_KEYS = {
    'conditions': 'type', 'taints': 'key', 'containers': 'name', 'initContainers': 'name',
    'ephemeralContainers': 'name', 'volumes': 'name', 'volumeMounts': 'mountPath', 'env': 'name',
    'ownerReferences': 'uid', 'addresses': 'type', 'imagePullSecrets': 'name', 'ports': 'containerPort',
}
# lists of scalars with patchStrategy merge (union)
MERGE_PRIMITIVE_LISTS = {'finalizers'}


def strategic_merge_patch(target, patch):
    """Strategic merge patch for the fields this fake serves.

    Maps merge and null deletes (as in a merge patch); lists with a known patchMergeKey merge
    item by item (an item with "$patch": "delete" removes its match); metadata.finalizers is a
    union; other lists replace. Directives: "$patch": "replace"/"delete" on a map,
    "$retainKeys", "$deleteFromPrimitiveList/<field>", and "$setElementOrder/<field>" (order only:
    ignored).
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get('$patch')
    if directive == 'delete':
        return None
    body = {k: v for k, v in patch.items() if k != '$patch'}
    if directive == 'replace':
        return _strip_directives(body)
    if directive not in (None, 'merge'):
        raise PatchError('Unknown patch type: %s' % directive)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = body.pop('$retainKeys', None)
    for key, value in body.items():
        if key.startswith('$setElementOrder/'):
            continue
        if key.startswith('$deleteFromPrimitiveList/'):
            field = key.split('/', 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [item for item in result[field] if item not in (value or [])]
            continue
        if key.startswith('$'):
            raise PatchError('unknown patch directive %s' % key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    if retain is not None:
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _strip_directives(value):
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith('$')}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _merge_list(field, current, patch_items):
    current = copy.deepcopy(current) if isinstance(current, list) else []
    if field in MERGE_PRIMITIVE_LISTS:
        for item in patch_items:
            if item not in current:
                current.append(item)
        return current
    key = MERGE_KEYS.get(field)
    if key is None or not all(isinstance(item, dict) for item in patch_items):
        return _strip_directives(patch_items)
    for item in patch_items:
        if item.get('$patch') == 'replace':
            return [_strip_directives({k: v for k, v in i.items() if k != '$patch'})
                    for i in patch_items if i.get('$patch') != 'replace']
        index = next((i for i, old in enumerate(current)
                      if isinstance(old, dict) and old.get(key) == item.get(key)), None)
        if item.get('$patch') == 'delete':
            if index is not None:
                del current[index]
        elif index is None:
            current.append(_strip_directives(item))
        else:
            current[index] = strategic_merge_patch(current[index], item)
    return current


def _pointer(path):
    if path == '':
        return []
    if not path.startswith('/'):
        raise PatchError('invalid JSON pointer %r' % path)
    return [p.replace('~1', '/').replace('~0', '~') for p in path[1:].split('/')]


def _walk(doc, parts):
    for part in parts:
        if isinstance(doc, list):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            doc = doc[part]
        else:
            raise KeyError(part)
    return doc


def json_patch(target, operations):
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    doc = copy.deepcopy(target)
    if not isinstance(operations, list):
        raise PatchError('json patch must be a list of operations')
    for op in operations:
        try:
            doc = _json_patch_op(doc, op)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise PatchError('the server rejected our request due to an error in our request: %s' % exc) from exc
    return doc


def _json_patch_op(doc, op):
    kind = op.get('op')
    parts = _pointer(op.get('path', ''))
    if kind in ('move', 'copy'):
        source = _pointer(op['from'])
        value = copy.deepcopy(_walk(doc, source))
        if kind == 'move':
            doc = _json_patch_op(doc, {'op': 'remove', 'path': op['from']})
        return _json_patch_op(doc, {'op': 'add', 'path': op['path'], 'value': value})
    if kind == 'test':
        if _walk(doc, parts) != op.get('value'):
            raise ValueError('testing value %s failed' % op.get('path'))
        return doc
    if not parts:
        if kind in ('add', 'replace'):
            return copy.deepcopy(op['value'])
        raise ValueError('cannot remove the whole document')
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if kind == 'add':
        if isinstance(parent, list):
            parent.insert(len(parent) if last == '-' else int(last), copy.deepcopy(op['value']))
        else:
            parent[last] = copy.deepcopy(op['value'])
    elif kind == 'remove':
        if isinstance(parent, list):
            del parent[int(last)]
        else:
            del parent[last]
    elif kind == 'replace':
        if isinstance(parent, list):
            parent[int(last)] = copy.deepcopy(op['value'])
        else:
            if last not in parent:
                raise KeyError('replace operation does not apply: doc is missing key: /%s' % '/'.join(parts))
            parent[last] = copy.deepcopy(op['value'])
    else:
        raise ValueError('Unexpected kind: %s' % kind)
    return doc
