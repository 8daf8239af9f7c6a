"""Reports: thresholds, named SQL parameters, formatting of figures."""
