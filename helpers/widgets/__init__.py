"""ipywidgets explorers, one module per quiz; each ``explore_*`` returns the widget (not
displayed), and the function behind it is importable and tested without a frontend."""
