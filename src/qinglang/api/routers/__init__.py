"""One router per room: platforms, accounts, graph (relationships and content), decisions."""
