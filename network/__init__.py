"""Brian2 networks (issue 2, another branch); this placeholder lets the package install."""
