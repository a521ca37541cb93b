"""Transforms between the drivers and the outbox's consumers: grid, filter, resample, windows."""
