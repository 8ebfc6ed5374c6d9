"""Submit searches to a Ray cluster through the Ray Jobs API, and follow them.

Depends on `rsearch.spec` and `rsearch.errors` only; Ray's `JobSubmissionClient` is imported
when a client is made, so validating and packaging a submission needs no Ray.
"""
