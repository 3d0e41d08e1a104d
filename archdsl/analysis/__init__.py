"""Analyses over the IR (torch-free)."""
