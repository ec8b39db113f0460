"""Operator scripts that are run by hand or by make, never imported by the apps."""
