"""The chat web app: conversations, streaming answers over websockets, sharing, admin."""
