"""The proxy function: Anthropic's API under /proxy/v1/*, OpenAI's under /proxy/openai/v1/*,
forwarded unchanged with the capture of model calls queued (``kontex.proxy.app``).

``app`` is an ASGI app: on AWS uvicorn runs it behind the Lambda Web Adapter (``server.py``,
started by ``run.sh``), and ``kontex dev`` mounts the same app at ``/proxy/``.
"""

from kontex.startup import loading

with loading():
    from kontex.proxy.app import ProxyApp

    app = ProxyApp()
