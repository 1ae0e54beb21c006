# -*- coding: utf-8 -*-
"""A fake Kubernetes API server for tests that drive real kubectl: plain HTTP on 127.0.0.1, stdlib only.

    with FakeKube() as kube:
        kube.add_node('n1')
        kube.write_kubeconfig(path)     # then run the pinned kubectl with KUBECONFIG=path

CLI (serves until SIGTERM/SIGINT, prints the URL on one line):
    python -m tests.k8s_fake --port 0 --state seed.json [--kubeconfig PATH]
    python tests/k8s_fake/server.py --port 0 --state seed.json

See README.md beside this file for the protocol covered, the /_fake admin endpoints and the failure switches.
"""

from __future__ import annotations

import argparse
import bisect
import copy
import datetime
import http.server
import json
import os
import re
import secrets
import select
import signal
import socket
import sys
import threading
import time
import traceback
import typing
import urllib.parse

if __name__ == '__main__' and not __package__:
    # `python tests/k8s_fake/server.py`: import this directory as the package k8s_fake (PEP 366)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = 'k8s_fake'  # pylint: disable=redefined-builtin

from . import kinds, wire  # noqa: E402
from .kinds import ApiError  # noqa: E402
from .matching import fields_match, labels_match, parse_field_selector, parse_label_selector  # noqa: E402
from .pprof import canned_profile  # noqa: E402
from .store import DEFAULT_KERNEL, Store, now_iso, pod_status, random_suffix  # noqa: E402

LISTEN_HOST = '127.0.0.1'
PUBLIC_PATHS = ('/version', '/healthz', '/livez', '/readyz')
MUTATING = ('POST', 'PUT', 'PATCH', 'DELETE')
# What a real API server (or the load balancer in front of it) answers while it is briefly unavailable.
TRANSIENT_STATUS = {
    429: ('TooManyRequests', 'the server has received too many requests and has asked us to try again later'),
    500: ('InternalError', 'an error on the server ("etcdserver: leader changed") has prevented the request from '
                           'succeeding'),
    503: ('ServiceUnavailable', 'the server is currently unable to handle the request'),
}
PATCH_TYPES = {'application/json-patch+json': 'json', 'application/merge-patch+json': 'merge',
               'application/strategic-merge-patch+json': 'strategic'}


class Mutation(typing.NamedTuple):
    """One mutating API request as the fake received it (admin /_fake calls are not recorded)."""
    method: str
    path: str
    body: typing.Any  # parsed JSON, decoded protobuf (DeleteOptions/Eviction), or None
    time: float
    status: int = 0
    dry_run: bool = False
    query: dict = {}
    content_type: str = ''


class Request(typing.NamedTuple):
    """Any API request (reads too), for tests that assert what kubectl asked for."""
    method: str
    path: str
    query: dict
    status: int
    time: float
    accept: str
    content_type: str


class ClientGone(Exception):
    """The client closed the connection while we were writing."""


class _Server(http.server.ThreadingHTTPServer):
    """A threading HTTP server that knows its open connections, so stop() can end them all."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, fake):
        self.fake = fake
        self.connections = set()
        self.workers = set()
        self.track_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        worker = threading.Thread(target=self._work, args=(request, client_address), daemon=True,
                                  name='k8s-fake-connection')
        with self.track_lock:
            self.connections.add(request)
            self.workers.add(worker)
        worker.start()

    def _work(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:  # a client that vanished mid-request is normal here
            if self.fake.verbose:
                self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self.track_lock:
                self.connections.discard(request)
                self.workers.discard(threading.current_thread())

    def close_connections(self):
        with self.track_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Handler(http.server.BaseHTTPRequestHandler):
    """One API connection (HTTP/1.1 keep-alive, as kubectl uses it)."""

    protocol_version = 'HTTP/1.1'
    server_version = 'k8s-fake/1'

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        if self.server.fake.verbose:  # method, path and status only: never headers (the token)
            sys.stderr.write('k8s-fake: %s\n' % (format % args))

    def do_GET(self):
        self._dispatch('GET')

    def do_POST(self):
        self._dispatch('POST')

    def do_PUT(self):
        self._dispatch('PUT')

    def do_PATCH(self):
        self._dispatch('PATCH')

    def do_DELETE(self):
        self._dispatch('DELETE')

    # ------------------------------------------------------------ plumbing

    def _read_body(self):
        if 'chunked' in (self.headers.get('Transfer-Encoding') or '').lower():
            data = b''
            while True:
                size = int(self.rfile.readline().split(b';')[0].strip() or b'0', 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(length) if length else b''

    def _send(self, code, payload, content_type='application/json'):
        if isinstance(payload, (dict, list)):
            data = json.dumps(payload).encode()
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = payload or b''
        self.send_response(code)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(data)))
        self.send_header('Cache-Control', 'no-cache, private')
        self.send_header('Audit-Id', random_suffix(8))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def client_gone(self):
        try:
            readable, _w, _x = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b''
        except OSError:
            return True

    def _chunk(self, data):
        try:
            self.wfile.write(b'%x\r\n%s\r\n' % (len(data), data))
            self.wfile.flush()
        except OSError as exc:
            raise ClientGone() from exc

    # ------------------------------------------------------------ dispatch

    def _dispatch(self, method):
        fake = self.server.fake
        started = time.time()
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        raw = self._read_body()
        content_type = self.headers.get('Content-Type') or ''
        if path == '/_fake' or path.startswith('/_fake/'):
            self._admin(method, path, raw)
            return
        if fake.hangs(path):
            self._hang()
            return
        blip = fake.blipping(path)
        if blip is not None:
            self._blip(blip, method, path, query, content_type)
            return
        if fake.delay:
            fake.stopping.wait(fake.delay)
        body = None
        dry_run = query.get('dryRun') == 'All'
        status = 500
        self.recorded = False
        try:
            auth = (self.headers.get('Authorization') or '').strip()
            if fake.require_token and path not in PUBLIC_PATHS and not (auth.startswith('Bearer ') and auth[7:].strip()):
                raise ApiError(401, 'Unauthorized', 'Unauthorized')
            if query.get('dryRun') not in (None, 'All'):
                raise kinds.bad_request('Invalid dry run value: %s' % query['dryRun'])
            body = self._parse_body(raw, content_type, method)
            options = (body or {}).get('deleteOptions', body) if isinstance(body, dict) else {}
            dry_run = dry_run or 'All' in ((options or {}).get('dryRun') or [])
            status = self._route(method, path, query, body, content_type, dry_run)
        except ApiError as error:
            status = error.code
            self._send(error.code, error.status())
        except (ClientGone, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            status = 499
        except Exception as exc:  # a bug in the fake: say so loudly, as a 500 Status, not as a dropped connection
            traceback.print_exc()
            status = 500
            self._send(500, ApiError(500, 'InternalError', 'k8s-fake failed on %s %s: %r' % (method, path, exc)).status())
        finally:
            if not self.recorded:
                fake.record(method, path, query, status, self.headers.get('Accept') or '', content_type, body, dry_run,
                            started)

    def _parse_body(self, raw, content_type, method):
        if not raw:
            return None
        media = wire.media_type(content_type)
        if media == wire.PROTOBUF:
            try:
                return wire.decode_protobuf(raw)
            except ValueError as exc:
                raise ApiError(415, 'UnsupportedMediaType', 'the fake API server decodes no such protobuf body: %s'
                               % exc) from exc
        if media in ('application/json', '') or media.endswith('+json'):
            try:
                return json.loads(raw)
            except ValueError as exc:
                raise kinds.bad_request("couldn't get version/kind; json parse error: %s" % exc) from exc
        if method == 'PATCH':
            raise ApiError(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - '
                           'accepted media types include: application/json-patch+json, application/merge-patch+json, '
                           'application/strategic-merge-patch+json (this fake has no server-side apply)')
        raise ApiError(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - accepted '
                       'media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf')

    def _hang(self):
        """A request that never gets an answer: hold the connection until the client gives up."""
        fake = self.server.fake
        while fake.hangs(self.path) and not fake.stopping.is_set() and not self.client_gone():
            fake.stopping.wait(0.1)
        self.close_connection = True

    def _blip(self, code, method, path, query, content_type):
        """A transient failure: 0 drops the connection unanswered, else the Status a real server sends."""
        fake = self.server.fake
        fake.record(method, path, query, code, self.headers.get('Accept') or '', content_type, None, False)
        self.recorded = True
        if code == 0:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        reason, message = TRANSIENT_STATUS.get(
            code, ('InternalError', 'an error on the server has prevented the request from succeeding'))
        self._send(code, ApiError(code, reason, message).status())

    # ------------------------------------------------------------ the API

    def _route(self, method, path, query, body, content_type, dry_run):
        fake = self.server.fake
        accept = self.headers.get('Accept') or ''
        parts = [urllib.parse.unquote(p) for p in path.split('/') if p]
        if path == '/version':
            self._send(200, fake.version_info())
            return 200
        if path in PUBLIC_PATHS:
            self._send(200, 'ok', 'text/plain; charset=utf-8')
            return 200
        if path == '/openapi/v3' or path.startswith('/openapi/v3/'):
            document = kinds.openapi_root() if path == '/openapi/v3' else kinds.openapi_group_version(path[12:])
            if document is None:
                self._send(404, '404 page not found\n', 'text/plain; charset=utf-8')
                return 404
            self._send(200, document)
            return 200
        if not parts or parts[0] not in ('api', 'apis'):
            self._send(404, '404 page not found\n', 'text/plain; charset=utf-8')
            return 404
        if parts[:3] == ['api', 'v1', 'nodes'] and len(parts) > 4 and parts[4] == 'proxy':
            return self._node_proxy(parts[3], '/'.join(parts[5:]), query)
        if parts[0] == 'api':
            group, rest = '', parts[1:]
        else:
            group, rest = (parts[1] if len(parts) > 1 else None), parts[2:]
        if group is None or (parts[0] == 'api' and not rest):
            return self._discovery_root(parts[0] == 'api', accept)
        if parts[0] == 'apis' and not rest:
            document = kinds.api_group(group)
            if document is None:
                raise kinds.no_such_resource()
            self._send(200, document)
            return 200
        version, rest = rest[0], rest[1:]
        if not rest:
            document = kinds.api_resource_list(group, version)
            if document is None:
                raise kinds.no_such_resource()
            self._send(200, document)
            return 200
        watch = rest[0] == 'watch'
        if watch:
            rest = rest[1:]
        namespace = None
        if len(rest) >= 3 and rest[0] == 'namespaces' and kinds.find(group, version, rest[2]) is not None \
                and kinds.find(group, version, rest[2]).namespaced:
            namespace, rest = rest[1], rest[2:]
        rtype = kinds.find(group, version, rest[0]) if rest else None
        if rtype is None or len(rest) > 3 or (rtype.namespaced and namespace is None and len(rest) > 1):
            raise kinds.no_such_resource()
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if subresource and subresource not in [s[0] for s in rtype.subresources]:
            raise kinds.no_such_resource()
        if watch or (method == 'GET' and name is None and query.get('watch') in ('true', '1')):
            return self._watch(rtype, namespace, name, query)
        store = fake.store
        if method in ('POST', 'PUT') and subresource is None and query.get('fieldValidation') == 'Strict':
            unknown = kinds.unknown_fields(rtype, body)
            if unknown:
                raise kinds.strict_decoding_error(rtype, unknown)
        if name is None:
            if method == 'GET':
                items, resource_version = store.list(rtype.name, namespace, self._matcher(rtype, query))
                return self._send_object(200, rtype, items, resource_version, accept)
            if method == 'POST':
                if namespace is None and rtype.namespaced:
                    raise kinds.no_such_resource()
                return self._send_object(201, rtype, store.create(rtype.name, namespace, body, dry_run), None, accept)
            raise kinds.method_not_allowed(method)
        if subresource == 'eviction':
            if method != 'POST':
                raise kinds.method_not_allowed(method)
            meta = (body or {}).get('metadata') or {}
            if meta.get('name') not in (None, name):
                raise kinds.bad_request('name in URL does not match name in Eviction object')
            if meta.get('namespace') not in (None, '', namespace):
                raise kinds.bad_request('namespace in URL does not match namespace in Eviction object')
            options = (body or {}).get('deleteOptions') or {}
            self._send(201, store.evict(namespace, name, dry_run, options))
            return 201
        if method == 'GET':
            return self._send_object(200, rtype, store.get(rtype.name, namespace, name), None, accept)
        if method == 'PUT':
            obj = store.replace(rtype.name, namespace, name, body, subresource, dry_run)
            return self._send_object(200, rtype, obj, None, accept)
        if method == 'PATCH':
            patch_type = PATCH_TYPES.get(wire.media_type(content_type))
            if patch_type is None:
                raise ApiError(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - '
                               'accepted media types include: application/json-patch+json, '
                               'application/merge-patch+json, application/strategic-merge-patch+json')
            obj = store.patch(rtype.name, namespace, name, patch_type, body, subresource, dry_run)
            return self._send_object(200, rtype, obj, None, accept)
        if method == 'DELETE' and subresource is None:
            return self._send_object(200, rtype, store.delete(rtype.name, namespace, name, body or {}, dry_run),
                                     None, accept)
        raise kinds.method_not_allowed(method)

    def _node_proxy(self, node, path, query):
        """nodes/NODE/proxy/PATH: the API server relaying to the kubelet. Only kubelet's CPU profile is
        served (a canned one, after ?seconds=N like the real handler); anything else is a 404 from kubelet."""
        fake = self.server.fake
        fake.store.get('nodes', None, node)  # NotFound for a node that does not exist
        if path != 'debug/pprof/profile':
            self._send(404, '404 page not found\n', 'text/plain; charset=utf-8')
            return 404
        fake.stopping.wait(min(float(query.get('seconds') or 30), 30))
        self._send(200, fake.pprof_profile, 'application/octet-stream')
        return 200

    def _discovery_root(self, core, accept):
        chosen = None
        for media, params in wire.parse_accept(accept) or [('application/json', {})]:
            if media == 'application/json' and params.get('g') == 'apidiscovery.k8s.io' and \
                    params.get('as') == 'APIGroupDiscoveryList' and params.get('v') in kinds.AGGREGATED_VERSIONS:
                chosen = params['v']
                break
            if media in ('application/json', 'application/*', '*/*') and 'as' not in params:
                chosen = 'legacy'
                break
        if chosen is None:
            raise ApiError(406, 'NotAcceptable', 'only the following media types are accepted: application/json, '
                           'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList')
        if chosen == 'legacy':
            document = kinds.api_versions('%s:%d' % self.server.server_address[:2]) if core else kinds.api_group_list()
            self._send(200, document)
        else:
            self._send(200, kinds.aggregated(core, chosen),
                       'application/json;g=apidiscovery.k8s.io;v=%s;as=APIGroupDiscoveryList' % chosen)
        return 200

    @staticmethod
    def _matcher(rtype, query, name=None):
        try:
            labels = parse_label_selector(query.get('labelSelector', ''))
            fields = parse_field_selector(query.get('fieldSelector', ''), rtype.fields)
        except ValueError as exc:
            raise kinds.bad_request(str(exc)) from exc
        if name is not None:
            fields.append(('metadata.name', '=', name))
        return lambda obj: labels_match(labels, obj['metadata'].get('labels')) and fields_match(fields, obj)

    def _send_object(self, code, rtype, obj, resource_version, accept):
        """An object or a list (resource_version set), as JSON or as a Table when kubectl asks for one."""
        wanted = None
        for media, params in wire.parse_accept(accept) or [('application/json', {})]:
            if media == 'application/json' and params.get('as') == 'Table' and params.get('g') == 'meta.k8s.io':
                wanted = 'table'
                break
            if media in ('application/json', 'application/*', '*/*') and 'as' not in params:
                wanted = 'json'
                break
        if wanted is None and not any(m == wire.PROTOBUF for m, _p in wire.parse_accept(accept)):
            raise ApiError(406, 'NotAcceptable', 'only the following media types are accepted: application/json, '
                           'application/vnd.kubernetes.protobuf')
        if wanted == 'table' and code == 200:
            objects = obj if resource_version is not None else [obj]
            rv = resource_version or obj['metadata'].get('resourceVersion', '')
            self._send(200, kinds.table(rtype, objects, rv), 'application/json')
            return 200
        if resource_version is not None:
            obj = {'kind': rtype.kind + 'List', 'apiVersion': rtype.api_version,
                   'metadata': {'resourceVersion': resource_version}, 'items': obj}
        self._send(code, obj)
        return code

    def _watch(self, rtype, namespace, name, query):
        """A watch: chunked JSON lines {"type": ..., "object": ...}, from the history after resourceVersion."""
        fake = self.server.fake
        store = fake.store
        match = self._matcher(rtype, query, name)
        try:
            timeout = float(query.get('timeoutSeconds') or fake.watch_timeout)
        except ValueError as exc:
            raise kinds.bad_request('invalid timeoutSeconds: %s' % exc) from exc
        initial_events = query.get('sendInitialEvents') == 'true'
        bookmarks = query.get('allowWatchBookmarks') == 'true'
        requested = query.get('resourceVersion', '')
        with store.lock:
            if requested in ('', '0') or initial_events:
                initial, _rv = store.list(rtype.name, namespace, match)
                start = store.resource_version
            else:
                initial = []
                try:
                    start = int(requested)
                except ValueError as exc:
                    raise kinds.bad_request('invalid resource version: %s' % requested) from exc
            position = bisect.bisect_right([event[0] for event in store.events], start)
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Transfer-Encoding', 'chunked')
        self.send_header('Cache-Control', 'no-cache, private')
        self.end_headers()
        # a watch is on record as soon as it streams (tests wait for it), not when it ends
        fake.record('GET', urllib.parse.urlsplit(self.path).path, query, 200, self.headers.get('Accept') or '', '',
                    None, False)
        self.recorded = True
        for obj in initial:
            self._chunk(json.dumps({'type': 'ADDED', 'object': obj}).encode() + b'\n')
        if initial_events and bookmarks:
            mark = {'kind': rtype.kind, 'apiVersion': rtype.api_version,
                    'metadata': {'resourceVersion': str(start), 'annotations': {'k8s.io/initial-events-end': 'true'}}}
            self._chunk(json.dumps({'type': 'BOOKMARK', 'object': mark}).encode() + b'\n')
        deadline = time.monotonic() + timeout
        while not fake.stopping.is_set() and time.monotonic() < deadline and not self.client_gone():
            with store.changed:
                if len(store.events) == position:
                    store.changed.wait(min(0.25, max(0.0, deadline - time.monotonic())))
                batch = store.events[position:]
                position = len(store.events)
            for _rv, resource, kind, old, new in batch:
                if resource != rtype.name or (namespace and new['metadata'].get('namespace') != namespace):
                    continue
                was, now = old is not None and match(old), match(new)
                if kind == 'MODIFIED' and was != now:
                    kind = 'ADDED' if now else 'DELETED'
                elif not now:
                    continue
                self._chunk(json.dumps({'type': kind, 'object': new}).encode() + b'\n')
        self._chunk(b'')
        return 200

    # ------------------------------------------------------------ /_fake admin endpoints

    def _admin(self, method, path, raw):
        fake = self.server.fake
        parts = [urllib.parse.unquote(p) for p in path.split('/') if p][1:]
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self._send(400, {'error': 'the body is not JSON'})
            return
        try:
            if method == 'GET' and parts == ['mutations']:
                self._send(200, [m._asdict() for m in fake.mutations])
            elif method == 'GET' and parts == ['requests']:
                self._send(200, [r._asdict() for r in fake.requests])
            elif method == 'GET' and parts == ['state']:
                self._send(200, fake.state())
            elif method == 'GET' and parts == ['failures']:
                self._send(200, fake.failures())
            elif method == 'POST' and parts == ['failures']:
                fake.set_failures(**body)
                self._send(200, fake.failures())
            elif method == 'POST' and len(parts) == 3 and parts[0] == 'nodes' and parts[2] == 'ready':
                if not isinstance(body.get('ready'), bool):
                    self._send(400, {'error': 'give {"ready": true|false} (and optionally "kernelVersion", "bootID")'})
                    return
                node = fake.set_node_ready(parts[1], body['ready'], body.get('kernelVersion'), body.get('bootID'))
                self._send(200, fake.node_summary(node))
            elif method == 'POST' and len(parts) == 3 and parts[0] == 'pdbs':
                fake.set_pdb_disruptions_allowed(parts[2], int(body['disruptionsAllowed']), parts[1])
                self._send(200, fake.store.get('poddisruptionbudgets', parts[1], parts[2]))
            else:
                self._send(404, {'error': 'no such admin endpoint: %s %s' % (method, path)})
        except ApiError as error:
            self._send(error.code, error.status())
        except (KeyError, TypeError, ValueError) as exc:
            self._send(400, {'error': str(exc)})


class FakeKube:
    """The fake API server and its cluster state; a context manager that serves on 127.0.0.1 in threads."""

    def __init__(self, port=0, server_version='v1.34.1', replacement_delay=0.5, watch_timeout=300.0,
                 require_token=False, verbose=False):
        self.store = Store(replacement_delay=replacement_delay)
        self.port = port
        self.server_version = server_version
        self.watch_timeout = watch_timeout
        self.require_token = require_token
        self.verbose = verbose
        self.delay = 0.0  # seconds every API request waits before it is handled
        self.token = 'fake-' + secrets.token_hex(12)
        self.pprof_profile = canned_profile()  # what nodes/N/proxy/debug/pprof/profile returns (bytes)
        self.stopping = threading.Event()
        self._hang_patterns = []
        self._blip = None  # (pattern, status code or 0 for a dropped connection, until time.monotonic())
        self._log_lock = threading.Lock()
        self._mutations = []
        self._requests = []
        self._server = None
        self._threads = []

    # ------------------------------------------------------------ lifecycle

    def start(self):
        """Serve on 127.0.0.1 (port 0: any free port; after stop(), the same port again)."""
        if self._server is not None:
            return self
        self.stopping.clear()
        self._server = _Server((LISTEN_HOST, self.port), Handler, self)
        self.port = self._server.server_address[1]
        self._threads = [threading.Thread(target=self._server.serve_forever, kwargs={'poll_interval': 0.1},
                                          name='k8s-fake-server', daemon=True),
                         threading.Thread(target=self._controllers, name='k8s-fake-controllers', daemon=True)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self):
        """The API server goes away: stop listening, end every open connection (watches too), join threads."""
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping.set()
        with self.store.changed:
            self.store.changed.notify_all()
        server.shutdown()
        server.server_close()
        server.close_connections()
        deadline = time.monotonic() + 5
        for thread in self._threads + list(server.workers):
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def restart(self):
        """Stop and serve again on the same port with the same state (an API server restart)."""
        self.stop()
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def _controllers(self):
        while not self.stopping.wait(0.05):
            self.store.tick()

    @property
    def url(self):
        return 'http://%s:%d' % (LISTEN_HOST, self.port)

    def version_info(self):
        match = re.match(r'v(\d+)\.(\d+)', self.server_version)
        major, minor = match.groups() if match else ('1', '34')
        return {'major': major, 'minor': minor, 'gitVersion': self.server_version,
                'gitCommit': '0' * 40, 'gitTreeState': 'clean', 'buildDate': '2025-01-01T00:00:00Z',
                'goVersion': 'go1.24.0', 'compiler': 'gc', 'platform': 'linux/amd64'}

    def write_kubeconfig(self, path, namespace='default'):
        """A kubeconfig for this server (plain http, a bearer token the fake never checks by value); returns path."""
        text = ('apiVersion: v1\nkind: Config\npreferences: {}\ncurrent-context: fake\n'
                'clusters:\n- name: fake\n  cluster:\n    server: %s\n'
                'contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: %s\n'
                'users:\n- name: fake\n  user:\n    token: %s\n') % (self.url, namespace, self.token)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
        return path

    # ------------------------------------------------------------ records

    def record(self, method, path, query, status, accept, content_type, body, dry_run, now=None):
        now = now or time.time()
        with self._log_lock:
            self._requests.append(Request(method, path, dict(query), status, now, accept, content_type))
            if method in MUTATING:
                self._mutations.append(Mutation(method, path, copy.deepcopy(body), now, status, dry_run,
                                                dict(query), content_type))

    @property
    def mutations(self):
        """Every mutating API request so far: Mutation(method, path, body, time, status, dry_run, query, ...)."""
        with self._log_lock:
            return list(self._mutations)

    @property
    def requests(self):
        with self._log_lock:
            return list(self._requests)

    @property
    def max_unschedulable_seen(self):
        """The most nodes that were unschedulable at the same time over the server's life."""
        return self.store.max_unschedulable_seen

    # ------------------------------------------------------------ failure switches

    def hang(self, pattern):
        """Requests whose path matches this regex (re.search) get no answer until the client gives up."""
        self._hang_patterns.append(re.compile(pattern))

    def unhang(self, pattern=None):
        self._hang_patterns = [p for p in self._hang_patterns if pattern is not None and p.pattern != pattern]

    def hangs(self, path):
        return any(p.search(path) for p in self._hang_patterns)

    def blip(self, pattern, status=503, seconds=3.0):
        """For `seconds` from now, requests whose path matches fail transiently: `status` 429, 500 or 503
        with its Status body, or 0 for a connection closed without an answer."""
        if status not in (0,) + tuple(TRANSIENT_STATUS):
            raise ValueError('blip status must be 0, %s, got %r' % (', '.join(map(str, TRANSIENT_STATUS)), status))
        self._blip = (re.compile(pattern), int(status), time.monotonic() + float(seconds))

    def blipping(self, path):
        """The status a request on `path` fails with now, or None."""
        blip = self._blip
        if blip is None or time.monotonic() >= blip[2] or not blip[0].search(path):
            return None
        return blip[1]

    def set_node_never_ready(self, name, never=True):
        """The node goes NotReady now and stays NotReady whatever it (or the admin endpoint) reports later."""
        with self.store.lock:
            if never:
                self.store.never_ready.add(name)
                self.store.set_node_ready(name, False)
            else:
                self.store.never_ready.discard(name)

    def failures(self):
        blip = self._blip
        return {'delay': self.delay, 'hang': [p.pattern for p in self._hang_patterns],
                'never_ready': sorted(self.store.never_ready),
                'blip': {'pattern': blip[0].pattern, 'status': blip[1],
                         'seconds_left': round(max(0.0, blip[2] - time.monotonic()), 1)} if blip else None}

    def set_failures(self, delay=None, hang=None, never_ready=None, blip=None):
        """The admin endpoint's POST /_fake/failures: each given key replaces that switch
        (blip: {pattern, status, seconds}, see blip())."""
        if blip is not None:
            self.blip(blip['pattern'], int(blip.get('status', 503)), float(blip.get('seconds', 3)))
        if delay is not None:
            self.delay = float(delay)
        if hang is not None:
            self._hang_patterns = [re.compile(p) for p in hang]
        if never_ready is not None:
            for name in sorted(self.store.never_ready - set(never_ready)):
                self.set_node_never_ready(name, False)
            for name in never_ready:
                self.set_node_never_ready(name, True)

    # ------------------------------------------------------------ seeding and inspecting state

    def add_namespace(self, name):
        self.store.ensure_namespace(name)
        return self.store.find('namespaces', name)

    def add_node(self, name, ready=True, kernel=DEFAULT_KERNEL, control_plane=False, unschedulable=False,
                 annotations=None, labels=None):
        node = self.store.node_object(name, ready, kernel, control_plane, unschedulable, annotations, labels)
        return self.store.insert('nodes', None, node)

    def add_daemonset(self, name, namespace='kube-system', labels=None, nodes=None):
        """A DaemonSet (selector = labels, default app=<name>) and, for each node given, one of its pods."""
        labels = labels or {'app': name}
        daemonset = self.store.find('daemonsets', name, namespace)
        if daemonset is None:
            count = len(nodes or [])
            daemonset = self.store.insert('daemonsets', namespace, {
                'metadata': {'name': name, 'labels': dict(labels)},
                'spec': {'selector': {'matchLabels': dict(labels)},
                         'template': {'metadata': {'labels': dict(labels)},
                                      'spec': {'containers': [{'name': name, 'image': 'registry.k8s.io/pause:3.10'}]}}},
                'status': {'currentNumberScheduled': count, 'desiredNumberScheduled': count, 'numberReady': count,
                           'numberMisscheduled': 0, 'observedGeneration': 1}})
        for node in nodes or []:
            self.add_pod('%s-%s' % (name, random_suffix()), node, namespace, owner='DaemonSet/' + name,
                         labels=labels)
        return daemonset

    def _owner_reference(self, owner, namespace, labels):
        kind, _slash, owner_name = owner.partition('/')
        if not owner_name:
            raise ValueError('owner is "Kind/name", e.g. "ReplicaSet/web-5d8f" or "DaemonSet/node-exporter"')
        resource = {'DaemonSet': 'daemonsets', 'ReplicaSet': 'replicasets'}.get(kind)
        uid = None
        if resource:
            existing = self.store.find(resource, owner_name, namespace)
            if existing is None and kind == 'DaemonSet':
                existing = self.add_daemonset(owner_name, namespace, labels)
            elif existing is None:
                existing = self.store.insert('replicasets', namespace, {
                    'metadata': {'name': owner_name, 'labels': dict(labels)},
                    'spec': {'replicas': 1, 'selector': {'matchLabels': dict(labels)}},
                    'status': {'replicas': 1, 'readyReplicas': 1, 'availableReplicas': 1}})
            uid = existing['metadata']['uid']
        api_version = {'DaemonSet': 'apps/v1', 'ReplicaSet': 'apps/v1', 'StatefulSet': 'apps/v1',
                       'Job': 'batch/v1'}.get(kind, 'v1')
        return {'apiVersion': api_version, 'kind': kind, 'name': owner_name,
                'uid': uid or 'fake-%s' % secrets.token_hex(8), 'controller': True, 'blockOwnerDeletion': True}

    def add_pod(self, name, node, namespace='default', owner=None, labels=None, ready=True, phase='Running',
                empty_dir=False, grace_seconds=0, annotations=None, tolerations=None, restarts=0, age_seconds=0,
                requests=None):
        """A pod on node; owner 'ReplicaSet/x', 'DaemonSet/x', 'StatefulSet/x', 'Job/x', ... or None for a bare pod.

        restarts: its container's restartCount; age_seconds: how long ago it was created; requests: its
        container's resources.requests, e.g. {'cpu': '500m', 'memory': '1Gi'}."""
        labels = dict(labels or {'app': (owner or name).split('/')[-1]})
        self.store.ensure_namespace(namespace)
        spec = {'nodeName': node, 'terminationGracePeriodSeconds': grace_seconds, 'restartPolicy': 'Always',
                'schedulerName': 'default-scheduler', 'serviceAccountName': 'default',
                'containers': [{'name': 'app', 'image': 'registry.k8s.io/pause:3.10'}],
                'tolerations': list(tolerations or [])}
        meta = {'name': name, 'labels': labels, 'annotations': dict(annotations or {})}
        if owner:
            meta['ownerReferences'] = [self._owner_reference(owner, namespace, labels)]
            if owner.startswith('DaemonSet/'):
                spec['tolerations'] += [{'key': key, 'operator': 'Exists', 'effect': effect} for key, effect in (
                    ('node.kubernetes.io/not-ready', 'NoExecute'), ('node.kubernetes.io/unreachable', 'NoExecute'),
                    ('node.kubernetes.io/unschedulable', 'NoSchedule'), ('node.kubernetes.io/not-ready', 'NoSchedule'))]
        if requests:
            spec['containers'][0]['resources'] = {'requests': dict(requests)}
        if empty_dir:
            spec['volumes'] = [{'name': 'scratch', 'emptyDir': {}}]
            spec['containers'][0]['volumeMounts'] = [{'name': 'scratch', 'mountPath': '/scratch'}]
        pod = {'metadata': meta, 'spec': spec}
        pod['status'] = pod_status(pod, ready and phase == 'Running', phase)
        pod['status']['containerStatuses'][0]['restartCount'] = restarts
        pod = self.store.insert('pods', namespace, pod)
        if age_seconds:
            with self.store.lock:
                stored = self.store.objects['pods'][(namespace, name)]
                stored['metadata']['creationTimestamp'] = now_iso(-age_seconds)
                pod['metadata']['creationTimestamp'] = stored['metadata']['creationTimestamp']
        return pod

    def add_event(self, pod, node, reason='Started', namespace='default', count=1, age_seconds=0):
        """A core/v1 Event about a pod (which need not exist any more), as kubelet on node reports it."""
        stamp = now_iso(-age_seconds)
        return self.store.insert('events', namespace, {
            'metadata': {'name': '%s.%s' % (pod, random_suffix(16))},
            'involvedObject': {'kind': 'Pod', 'namespace': namespace, 'name': pod, 'apiVersion': 'v1'},
            'reason': reason, 'message': '%s container app' % reason, 'type': 'Normal',
            'source': {'component': 'kubelet', 'host': node}, 'reportingComponent': 'kubelet',
            'reportingInstance': node, 'count': count, 'firstTimestamp': stamp, 'lastTimestamp': stamp})

    def add_pdb(self, name, namespace='default', match_labels=None, min_available=None, max_unavailable=None,
                disruptions_allowed=None, unhealthy_pod_eviction_policy=None):
        """A policy/v1 PDB. With disruptions_allowed its status is pinned (manual mode), otherwise computed."""
        if min_available is None and max_unavailable is None and disruptions_allowed is None:
            raise ValueError('give min_available, max_unavailable or disruptions_allowed')
        spec = {'selector': {'matchLabels': dict(match_labels or {})}}
        if min_available is not None:
            spec['minAvailable'] = min_available
        elif max_unavailable is not None:
            spec['maxUnavailable'] = max_unavailable
        else:
            spec['maxUnavailable'] = 0
        if unhealthy_pod_eviction_policy:
            spec['unhealthyPodEvictionPolicy'] = unhealthy_pod_eviction_policy
        with self.store.lock:
            self.store.insert('poddisruptionbudgets', namespace, {'metadata': {'name': name}, 'spec': spec})
            if disruptions_allowed is not None:
                self.store.set_pdb_allowed(namespace, name, disruptions_allowed)
            else:
                self.store._refresh_pdbs()  # pylint: disable=protected-access
            return self.store.find('poddisruptionbudgets', name, namespace)

    def add_lease(self, name, namespace='kube-system', holder=None, duration_seconds=None, renew_time=None):
        """A Lease; with a holder it was acquired and last renewed at renew_time (default: now), as a live holder's."""
        spec = {}
        if holder is not None:
            spec['holderIdentity'] = holder
            stamp = (renew_time or datetime.datetime.now(datetime.timezone.utc)).strftime('%Y-%m-%dT%H:%M:%S.%fZ')
            spec['acquireTime'] = spec['renewTime'] = stamp
        if duration_seconds is not None:
            spec['leaseDurationSeconds'] = duration_seconds
        return self.store.insert('leases', namespace, {'metadata': {'name': name}, 'spec': spec})

    def seed(self, state):
        """Load a seed document (the CLI's --state): {"namespaces": [..], "nodes": [{add_node kwargs}], ...}."""
        for name in state.get('namespaces', []):
            self.add_namespace(name)
        for key, method in (('nodes', self.add_node), ('daemonsets', self.add_daemonset), ('pods', self.add_pod),
                            ('pdbs', self.add_pdb), ('leases', self.add_lease)):
            for kwargs in state.get(key, []):
                method(**kwargs)
        for name in state.get('never_ready', []):
            self.set_node_never_ready(name)
        if state.get('delay'):
            self.delay = float(state['delay'])

    def set_node_ready(self, name, ready, kernel=None, boot_id=None):
        """The kubelet reports Ready/NotReady; a kernel (and a new bootID) as after a reboot."""
        return self.store.set_node_ready(name, ready, kernel, boot_id)

    def set_pdb_disruptions_allowed(self, name, allowed, namespace='default'):
        self.store.set_pdb_allowed(namespace, name, allowed)

    def get(self, resource, name, namespace=None):
        """An object by plural resource name ('nodes', 'pods', 'leases', ...) or None."""
        return self.store.find(resource, name, namespace)

    def node(self, name):
        return self.store.find('nodes', name)

    def pod(self, name, namespace='default'):
        return self.store.find('pods', name, namespace)

    def pods(self, node=None, namespace=None):
        items, _rv = self.store.list('pods', namespace,
                                     lambda p: node is None or p.get('spec', {}).get('nodeName') == node)
        return items

    @staticmethod
    def node_summary(node):
        conditions = {c['type']: c['status'] for c in node.get('status', {}).get('conditions', [])}
        info = node.get('status', {}).get('nodeInfo', {})
        return {'name': node['metadata']['name'], 'ready': conditions.get('Ready') == 'True',
                'unschedulable': bool(node.get('spec', {}).get('unschedulable')),
                'kernelVersion': info.get('kernelVersion'), 'bootID': info.get('bootID'),
                'annotations': node['metadata'].get('annotations', {}),
                'resourceVersion': node['metadata']['resourceVersion']}

    def state(self):
        """Everything, for GET /_fake/state."""
        with self.store.lock:
            objects = {name: self.store.list(name)[0] for name in kinds.BY_NAME}
            return {'resourceVersion': str(self.store.resource_version),
                    'max_unschedulable_seen': self.store.max_unschedulable_seen,
                    'nodes': [self.node_summary(n) for n in objects['nodes']],
                    'failures': self.failures(), 'objects': objects}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tests.k8s_fake', description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--port', type=int, default=0, help='port on 127.0.0.1 (0: any free one)')
    parser.add_argument('--state', help='seed JSON: {"nodes": [{"name": "n1"}], "pods": [...], ...} (README.md)')
    parser.add_argument('--kubeconfig', help='write a kubeconfig for this server here')
    parser.add_argument('--server-version', default='v1.34.1')
    parser.add_argument('--replacement-delay', type=float, default=0.5)
    parser.add_argument('--verbose', action='store_true', help='log method, path and status of each request')
    parser.add_argument('--pidfile', help='write this process id here (removed on exit), to stop it by pid')
    parser.add_argument('--max-seconds', type=float, default=0,
                        help='stop by itself after this long (0: never), so a harness that dies leaves nothing running')
    args = parser.parse_args(argv)
    fake = FakeKube(port=args.port, server_version=args.server_version, replacement_delay=args.replacement_delay,
                    verbose=args.verbose)
    if args.state:
        with open(args.state) as handle:
            fake.seed(json.load(handle))
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_args: done.set())
    fake.start()
    deadline = time.monotonic() + args.max_seconds if args.max_seconds > 0 else None
    try:
        if args.pidfile:
            with open(args.pidfile, 'w') as handle:
                handle.write('%d\n' % os.getpid())
        if args.kubeconfig:
            fake.write_kubeconfig(args.kubeconfig)
        print(fake.url, flush=True)
        while not done.wait(0.5):
            if deadline is not None and time.monotonic() > deadline:
                break
    finally:
        fake.stop()
        if args.pidfile and os.path.exists(args.pidfile):
            os.remove(args.pidfile)
    return 0


if __name__ == '__main__':
    sys.exit(main())
