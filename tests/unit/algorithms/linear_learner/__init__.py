"""Unit tests of smlocal.algorithms.linear_learner."""
