"""Asynchronous jobs (videos): the SQLite job store and the local process's inline runner."""
