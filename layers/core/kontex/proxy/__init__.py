"""The proxy's HTTP edge: one ASGI app (``app.py``). What it forwards and captures is the use
case's (``services.proxy``); the header rules and the reading of replies are the domain's
(``domain.forwarding``, ``domain.model_calls``)."""
