"""The Telegram front: handlers and replies on top of the retrieval core."""
