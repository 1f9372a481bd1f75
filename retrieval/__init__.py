"""The retrieval core: image bytes → unit vector → nearest products. Knows nothing of Telegram."""
