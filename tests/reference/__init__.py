"""Float64 loop references for the losses (independent of the library)."""
