"""Fusion: device profiles (data), rules with legality and reasons, the planner, and the
executor that applies a plan to a torch module."""
