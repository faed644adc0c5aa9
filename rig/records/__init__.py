"""Records that survive anything: the hash-chained results log, the evidence bundle's manifest and
seal, and their verification (``stimrig verify``)."""
