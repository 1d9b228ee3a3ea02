"""Consent Ledger's core: events, the encrypted hash-chained ledger, policies, the engine,
importers and reports. Imports nothing from `server` and nothing of Flask."""

__version__ = "0.1.0"
