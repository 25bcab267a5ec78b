"""Learners beyond the linear baseline of `trainer.model`; the registry lives there."""
