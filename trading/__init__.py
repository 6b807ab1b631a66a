"""Trading: the Buy button's orders, paper fills and idempotent client order ids.

Why a room of its own (issue #16): what to buy, when it is safe, and how never to buy twice is
neither Telegram (bot/) nor exchange wire knowledge (venues/mexc/orders.py holds the MEXC calls).
It will hold positions and PnL as a Buy is followed to its exit. It imports nothing of shards,
supervisor or bot.

- trader: Trader (paper by default, signed market buys when trading.live), BuyResult, client_order_id.
"""
