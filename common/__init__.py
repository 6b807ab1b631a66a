"""Pieces every process shares: configuration, logging, the Signal type."""
