"""Reports: the READ ONLY query streamed to files, and the rendered outputs."""
