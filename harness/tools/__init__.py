"""Tools that read a run folder (or a live broker) after the fact: ``chaos trace`` and ``chaos dlq``.

The CLI only parses and prints; each tool returns typed records.
"""
