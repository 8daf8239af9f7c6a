"""The demo: the data generator and its SQL, the local mailbox."""
