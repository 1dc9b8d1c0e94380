"""A tiny project the demo fleet builds: real tests, a real artifact, Python only."""
