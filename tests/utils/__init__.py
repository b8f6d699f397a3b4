"""Helpers tests share: data builders and a live-server runner."""
