"""Tests of the HTTP service, through its API."""
