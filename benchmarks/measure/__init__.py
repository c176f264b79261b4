"""Measurement programs (not tests): speed (make speed), prefix-cache timing, accuracy equivalence of the fast path."""
