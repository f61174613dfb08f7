"""Route groups: the HTTP routes of one API surface each, with no app of their own.

A deployable (`functions/<name>.py`, named in vercel.json, api/*.py and serverless.yml) builds its
app from the groups it serves, and no deployable imports another: importing one loads its own
routes and nothing else (the import-linter contract "Deployables are independent" checks it).
"""
