"""Delivery: mail over SMTP, webhook posts."""
