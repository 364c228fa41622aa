#!/bin/bash
# Entry of the proxy function on AWS: the Lambda Web Adapter (layer, AWS_LAMBDA_EXEC_WRAPPER)
# starts this script, waits for the app's /health, then streams each answer to the function
# URL (invoke mode RESPONSE_STREAM) as uvicorn writes it (server.py runs handler.app).
PYTHONPATH="$LAMBDA_TASK_ROOT:/opt/python:$LAMBDA_RUNTIME_DIR${PYTHONPATH:+:$PYTHONPATH}" \
  exec python3 "$LAMBDA_TASK_ROOT/server.py"
