"""Fusion rules: each finds its pattern on the IR, checks legality, and either merges the
nodes into one kernel or records why it refused. Registered by rule ID (base.RULES), one
module an idea: folds, post-op fusions, merges across the graph, subsampling, and the
engine-specific chains."""

from . import chains, folds, merges, postops, subsampling  # noqa: F401  (registration)
from .base import EXECUTABLE, EXECUTES, NEEDS, OPTIONS, RULES, Rule, bytes_internal, rule
from .subsampling import subsampled_only

__all__ = ["EXECUTABLE", "EXECUTES", "NEEDS", "OPTIONS", "RULES", "Rule", "bytes_internal",
           "rule", "subsampled_only"]
