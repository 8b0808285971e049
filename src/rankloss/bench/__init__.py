"""Benchmark harness: suites, a resumable runner, reports (``rankloss bench``)."""
