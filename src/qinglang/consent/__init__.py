"""Guardian consent and data rights: notices, guardian verification, consents, rights requests
and the tamper-evident ledger that proves them.

Pure: no HTTP, no SQL. The store (`qinglang.store`) keeps the records; the guard reads a
`qinglang.guard.ConsentView` snapshot built from them.
"""
