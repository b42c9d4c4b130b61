"""Messaging channels: Telegram (python-telegram-bot) and SMS (Twilio). Each adapter turns its
channel's updates into ``hub.crm.ports`` facts and sends what the outbox hands it."""
