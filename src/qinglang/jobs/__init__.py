"""Batch jobs: file scans now; Spark scans and stream consumers arrive with their issues."""
