"""One module per backup tier kind (and restore and verify), as the root runs them."""
