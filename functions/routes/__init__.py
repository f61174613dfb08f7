"""Route groups that are not deployables: the HTTP routes of one API surface each, with no app.

A deployable (`functions/<name>.py`, named in api/*.py and serverless.yml) builds its app from the
routes it serves, and no deployable imports another (the import-linter contract "Deployables are
independent"). A group lives here when a deployable composes it with others (chat serves the chat,
Responses and Messages groups) or another module uses it (media through chat uses the videos
group); a deployable that alone serves its routes (admin, cron, models, video_worker) keeps them.
"""
