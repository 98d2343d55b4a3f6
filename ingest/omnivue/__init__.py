"""omnivue: consent-aware unified customer view from Kafka events."""

__version__ = "0.1.0"
