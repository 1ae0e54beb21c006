# -*- coding: utf-8 -*-
"""A canned kubelet CPU profile in pprof's format (gzipped profile.proto), written with a tiny protobuf encoder.

What it holds (CPU nanoseconds): 80% under cAdvisor's memory stat reader, 20% in the Go GC:
    syscall.Syscall <- fs.(*MemoryGroup).GetStats <- cadvisor housekeeping      8e9 ns
    runtime.gcBgMarkWorker                                                      2e9 ns
"""

from __future__ import annotations

import gzip

FUNCTIONS = ['syscall.Syscall', 'github.com/opencontainers/runc/libcontainer/cgroups/fs.(*MemoryGroup).GetStats',
             'github.com/google/cadvisor/manager.(*containerData).housekeeping', 'runtime.gcBgMarkWorker']
STACKS = [([1, 2, 3], 8 * 10 ** 9), ([4], 2 * 10 ** 9)]  # location ids (leaf first), CPU nanoseconds


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7f
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number, value):
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _packed(numbers):
    return b''.join(_varint(n) for n in numbers)


def canned_profile():
    strings = ['', 'samples', 'count', 'cpu', 'nanoseconds'] + FUNCTIONS
    profile = _field(1, _field(1, 1) + _field(2, 2)) + _field(1, _field(1, 3) + _field(2, 4))
    for ids, nanoseconds in STACKS:
        profile += _field(2, _field(1, _packed(ids)) + _field(2, _packed([nanoseconds // 10 ** 7, nanoseconds])))
    for index in range(len(FUNCTIONS)):
        profile += _field(4, _field(1, index + 1) + _field(4, _field(1, index + 1)))  # location -> line -> function
        profile += _field(5, _field(1, index + 1) + _field(2, 5 + index))  # function id, name
    profile += b''.join(_field(6, text) for text in strings)
    return gzip.compress(profile)
