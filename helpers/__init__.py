"""The course's shared package: datasets, checkers, plots, widgets and grading.

Notebooks import from here; ``python -m helpers`` is the instructor command line.
"""
__version__ = "0.1.0"
