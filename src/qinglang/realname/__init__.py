"""Real-name verification through the national anti-addiction system, and behaviour reporting."""
