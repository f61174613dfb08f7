#!/bin/sh
# Start script of the streaming Lambda functions (handler: run.sh). The Lambda Web Adapter
# (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap) runs it during INIT, waits until the port accepts
# connections, then forwards each invocation to it over HTTP and streams the response back.
# ASGI_APP names the deployable, e.g. functions.chat:app. Dependencies come from the layer.
set -eu
cd "${LAMBDA_TASK_ROOT:-.}"
export PYTHONPATH="/opt/python:${LAMBDA_TASK_ROOT:-.}${PYTHONPATH:+:$PYTHONPATH}"
# functions._server: uvicorn (httptools, uvloop, no access log, keep-alive 75 s) with writes
# coalesced per loop iteration; it serves ASGI_APP on 127.0.0.1:AWS_LWA_PORT.
: "${ASGI_APP:?ASGI_APP must name the app, e.g. functions.chat:app}"
exec python3 -m functions._server
