"""`fraudpipe serve`: each transaction scored as it happens, with the chain's head checkpoint.

The online inputs are the arrival path's (`trainer.arrival`) by construction: a
transaction's features are computed by the same query
(`trainer.features.prepared.day_features`, over the history prepared for the day)
from the same rows (the 37 days before its day as `trainer.arrival.day_transactions` reads
them, and the day's earlier transactions the service has seen), so its score equals the
arrival score of that row with the same checkpoint. Modules:

- `requests`: a request body in the share's mapped columns -> canonical rows, or a 4xx
  naming the field;
- `intraday`: the current day's transactions seen so far, in memory or shared by the
  replicas through Redis;
- `history`: the days before the serving day, prepared for the day's queries (the
  carried days ahead of midnight, the day just served at the roll);
- `head`: the verified head checkpoint and the top reasons of a score;
- `fast_model`: the checkpoint's probabilities without scikit-learn's per-call checks;
- `inputs`: the model inputs of one transaction or a batch, and their scores;
- `scorer`: the service's state (head, day), scoring, day roll and hot reload;
- `metrics`, `app`: the Prometheus metrics and the ASGI application (plain ASGI).
"""
