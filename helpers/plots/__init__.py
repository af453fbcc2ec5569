"""Plots, one module per quiz (``helpers.plots.<quiz>``); each ``show_*`` returns its figure."""
