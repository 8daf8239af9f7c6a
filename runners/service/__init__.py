"""The service's side: HTTP endpoints, git info, processes on this host."""
