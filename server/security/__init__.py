"""Passwords, tokens and the rules of who may do what."""
