"""Contact risk: grooming detection over platform events and messages.

Pure and fast: events in, per-sender and per-conversation risk out, with the signals that
produced it. Thresholds and windows come from the policy pack. Storage, HTTP intake and the
review queue are shells around it.
"""
