"""The quickstart: a small order workflow with a retry, a durable sleep and an event."""
