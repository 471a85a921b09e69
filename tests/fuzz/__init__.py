"""Property-based fuzz tests of every decoder of outside bytes: RecordIO, Record, CSV, request codecs, job spec.

Each module defines its decoder's ``TARGET`` (a Hypothesis strategy of valid, mutated and arbitrary
inputs and the property they must meet); its tests run it at CI size, ``scripts/fuzz.py`` at length.
"""
