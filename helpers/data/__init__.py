"""Datasets, one module per data set; every loader reads local files or generates data
deterministically (no download at run time) and fails with a message naming what is missing."""
