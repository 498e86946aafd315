"""The domain core: the event model, errors, redaction, parsing helpers, logging. No HTTP, no Redis."""
