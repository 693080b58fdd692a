"""Provides impressions (what lists readers were shown), their attribution and the daily online metrics.

``recording`` buffers impressions and writes them in batches off the request path;
``attribution`` ties clicks, reads, ratings and "Not interested" marks to the lists that led
to them; ``rollup`` computes the daily metrics and purges old impressions; ``pages`` gives
each list of a (cached) page a fresh id per response.
"""
