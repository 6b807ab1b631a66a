"""Detectors: one module per detector (detectors/pump.py, ...), all behind detectors/base.py.

Imports flow one way: detectors may use core's row spec, numpy and common, never shards, bot,
supervisor or store. See docs/adding-a-detector.md.
"""
