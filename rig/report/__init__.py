"""The evidence bundle's documents: the report a reviewer reads, the traceability matrix and the
output specification table, built from the results chain."""
