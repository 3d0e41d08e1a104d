"""The spec language: YAML loading with positions, the schema, and its errors."""
