"""chaos-harness."""
