"""The Telegram bot process: cards, commands, buttons, ALLOWED_IDS; Telegram only.

Why only Telegram (issue #16): the history is store/, orders are trading/, MEXC is venues/mexc/;
the bot composes them and speaks to people, so a change of chat front end touches this package only.
"""
