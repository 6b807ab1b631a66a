"""The history: one SQLite file (WAL) under SCANNER_DATA_DIR, one table per concept, mirrored to Parquet.

Why a room of its own (issue #16): the supervisor writes it (signals, outcomes), the bot and the
trading client write into it (actions, orders) and read it; it is the outbox that lets any of them
die without losing a signal or a decision. It imports nothing of core, shards, supervisor or bot.

- schema: the tables, their version and the row types;
- history: Store, the reads and writes every process uses;
- positions: positions, their fills and the exits journal (trading/ledger.py reads and writes them);
- balancer: the portfolio balancer's order journal (trading/portfolio.py);
- parquet: the monthly Parquet mirror (`python -m store.parquet DATA_DIR [YYYYMM]`).
"""
