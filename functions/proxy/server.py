"""uvicorn serving the proxy's ASGI app (``handler.app``) for the Lambda Web Adapter, which
streams each answer to the function URL (invoke mode RESPONSE_STREAM) as uvicorn writes it:
SSE reaches the client token by token for as long as the function may run (15 minutes).
uvicorn picks uvloop and httptools (both in the core layer) when they import, as `kontex dev`
does; tests/proxy/test_web_adapter_server.py checks that they do.

uvicorn's server is loaded without its command line (``uvicorn_server``): the package's
``__init__`` imports ``uvicorn.main``, and with it click and the reload and multiprocess
supervisors, which a server started from code never uses (about 13 ms of each cold start:
docs/benchmarks.md, "Cold start, fifth round").

The process loads the app and uvicorn's server without the cyclic garbage collector
(``kontex.startup.loading``), as each function's handler does."""

from __future__ import annotations

from kontex.startup import loading

with loading():
    import importlib.util
    import os
    import sys
    from types import ModuleType
    from typing import Any

    from handler import app  # type: ignore[import-not-found]


def uvicorn_server() -> tuple[Any, Any]:
    """``(uvicorn.Config, uvicorn.Server)``, the package's own classes, taken from
    ``uvicorn.config`` and ``uvicorn.server`` with the package's ``__init__`` not run: the
    package module gets what its ``__init__`` gives but ``main`` and ``run`` (``Config``,
    ``Server``, ``__version__``), and anything else asked of it runs the real ``__init__`` then
    (a module ``__getattr__``). A uvicorn whose modules do not fit this is imported whole, as
    ``import uvicorn`` does: never worse than that."""
    if "uvicorn" not in sys.modules:
        spec = importlib.util.find_spec("uvicorn")
        if spec is not None and spec.loader is not None and spec.submodule_search_locations:
            package = importlib.util.module_from_spec(spec)
            sys.modules["uvicorn"] = package
            try:
                from uvicorn._version import __version__
                from uvicorn.config import Config
                from uvicorn.server import Server
            except Exception:  # not the layout this expects: the whole package, as usual
                for name in [m for m in sys.modules if m == "uvicorn" or m.startswith("uvicorn.")]:
                    del sys.modules[name]
            else:
                vars(package).update(
                    __version__=__version__,
                    Config=Config,
                    Server=Server,
                    __getattr__=_completing(package, spec),
                )
                return Config, Server
    import uvicorn

    return uvicorn.Config, uvicorn.Server


def _completing(package: ModuleType, spec: Any) -> Any:
    def __getattr__(name: str) -> Any:  # noqa: N807 - a module's __getattr__ (PEP 562)
        vars(package).pop("__getattr__", None)
        spec.loader.exec_module(package)  # uvicorn/__init__.py: uvicorn.main, click...
        return getattr(package, name)

    return __getattr__


# What the server's startup (the container and its upstream client: ``ProxyApp.warm``) and its
# first call (``kontex.services.proxy``) import: ``kontex.proxy.app`` loads them when first used
# (`kontex dev` mounts it beside other apps); this process serves the proxy alone, so they load
# here, with the collector off
FIRST_CALL = ("kontex.bootstrap", "kontex.adapters.http_upstream", "kontex.services.proxy")

with loading():  # (the collection counts start again at 0 after each block's freeze)
    Config, Server = uvicorn_server()
    for name in FIRST_CALL:
        importlib.import_module(name)


def config() -> Any:
    """The server's ``uvicorn.Config``."""
    return Config(
        app,
        host="127.0.0.1",
        port=int(os.environ.get("AWS_LWA_PORT") or os.environ.get("PORT") or 8080),
        lifespan="on",
        log_config=None,
        access_log=False,  # the app logs through the standard logging module
        timeout_keep_alive=60,  # the adapter keeps its connection to us open between calls
    )


def main() -> None:
    Server(config()).run()


if __name__ == "__main__":
    main()
