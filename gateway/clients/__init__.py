"""Plain HTTP clients of the cloud APIs; they know nothing of the outbox."""
