"""Polar Measurement Data (PMD): the vendor service that streams raw ECG, PPG and ACC."""
