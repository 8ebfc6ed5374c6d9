"""Tests of rsearch.train, the training core."""
