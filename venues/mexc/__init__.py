"""MEXC spot V3 (mexc-api.md), one module per concern, like cryptofeed's one module per exchange.

- channels: stream names, subscription/ping messages and the ack parser (WebSocket);
- rest: the paced public-data client (per-endpoint weight windows, 429/418) and RestError;
- market: public REST endpoints with their weights and the strict parsers of their bodies;
- client: the signed client (HMAC-SHA256, recvWindow, clock skew) and MEXC's error codes in words;
- rules: per-symbol exchangeInfo rules (cached) and the rounding every order goes through;
- orders: the account, order, book and myTrades calls trading needs, answers parsed into plain values.

Futures (contract API, mexc-api.md §5; issue #17):
- futures: contract WebSocket channel names, sub/unsub/ping messages and strict push parsers;
- futures_rest: ContractRest (requests per 2 s per endpoint), the success/code envelope, contracts, tickers, depth;
- futures_feed: FuturesFeed, one contract WebSocket kept alive, pushes turned into on_ticker/on_book/on_gap.
"""
