"""Explainers: model-agnostic ones over ``backend.predict`` and dispatch to native ones."""
