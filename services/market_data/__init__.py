"""Market data: daily bars from Polygon.io, price files and a synthetic demo feed, written to
the ``prices`` cache together with the ``price_updates`` outbox the projector follows."""
