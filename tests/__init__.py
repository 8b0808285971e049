"""rankloss test suite."""
