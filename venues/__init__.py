"""Exchange adapters: one package per venue, everything that knows that exchange's wire and REST.

Why a room of its own (issue #16): channel names, REST paths and weights, response shapes, signing
and error codes change when the exchange changes, and nothing else does. Keeping them here means
shards/, supervisor/, bot/ and trading/ speak in parsed values and never read an exchange body.
venues/ imports nothing of core, shards, supervisor, bot or store.
"""
