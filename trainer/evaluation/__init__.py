"""Judging a model: ranking metrics, scoring a day, splits and checkpoint evaluation."""
