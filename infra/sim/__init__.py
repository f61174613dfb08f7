"""A faithful Grok web simulator: a real loopback server for tests, benchmarks and the sandbox.

Start with `infra.sim.server.SimServer`; see docs/simulator.md.
"""
