"""Backends that read the IR: torch modules, diagrams, generated code, reports."""
