"""Jobs: the store interface (``store``) and its memory and Redis backends, the relay, the
runner and the service. Import from the modules themselves: this package imports nothing, so
that a leaf such as ``redis_schema`` can be imported without the service behind it."""
