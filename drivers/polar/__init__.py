"""Polar Measurement Data (PMD): the vendor service that streams raw ECG, PPG and ACC.

Pure decoders and encoders of its frames and control point; imports only ``drivers.errors``.
"""
