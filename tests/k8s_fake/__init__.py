# -*- coding: utf-8 -*-
"""A fake Kubernetes API server for tests driven by real kubectl (see README.md)."""

from __future__ import annotations

from .server import FakeKube, Mutation, Request, main

__all__ = ['FakeKube', 'Mutation', 'Request', 'main']
