"""What every pipeline process of ``kontex dev`` loads, loaded once in the fork server they are
forked from (local/pipeline_process.py): the span and capture workers' modules, both stores'
adapters and the tokenizer (about 38 MB, held outside Python's heap). The processes forked from
it share those pages until they write to them, so a second span process costs its own work's
memory, not a second copy of the code and the tokenizer (docs/benchmarks.md, "Span processes
forked from one loaded server").

Imported only by the fork server (``multiprocessing``'s preload): it loads at import.
"""

from kontex.startup import loading

with loading():
    import aws_lambda_powertools.utilities.batch  # noqa: F401 (the workers' batch processor)
    from aws_lambda_powertools import Logger  # noqa: F401

    from kontex import bootstrap, observability, tokens  # noqa: F401
    from kontex.adapters import claim_check, local_queue, local_topic, sqlite_store  # noqa: F401
    from kontex.local import workers  # noqa: F401
    from kontex.services import capture, spans  # noqa: F401

    tokens.encoding()
