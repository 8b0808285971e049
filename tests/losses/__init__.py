"""Tests of the loss functions and modules."""
