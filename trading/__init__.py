"""Trading: the Buy button's orders, paper fills and idempotent client order ids.

Why a room of its own (issue #16): what to buy, when it is safe, and how never to buy twice is
neither Telegram (bot/) nor exchange wire knowledge (venues/mexc/orders.py holds the MEXC calls).
It holds the positions and PnL as a Buy is followed to its exit (issue #18). It imports nothing of shards,
supervisor or bot.

- trader: Trader (paper by default, signed market buys when trading.live), BuyResult, client_order_id;
- avgcost: AvgCost as a pure fold over fills; paper: fills walked through a book with a fee;
- ledger: fills into positions (store/positions.py) and the PnL figures; fills: myTrades and the rebuild;
- limits: the reserve, max positions, exposure, cooldown and the one funds lock;
- exits: Sell, /sell and the automatic exits, journaled and reconciled; audit: the start-up check;
- portfolio: the /portfolio view and the optional balancer.
"""
