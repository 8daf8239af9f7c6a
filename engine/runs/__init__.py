"""Runs: the ledger (and its named SQL), executing a claimed slot, the service loop, status,
logs.
"""
