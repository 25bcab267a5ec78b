"""Features of a day's transactions: the computation and the cache on the share."""
