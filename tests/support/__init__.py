"""Support code shared by the tests and the benchmarks: the tiny random model and the server
process helper. Imports nothing from `chatui`."""
