"""The command line: a thin layer, one small module per command."""
