"""Benchmarks whose printed tables are the README's figures. Not imported by the app."""
