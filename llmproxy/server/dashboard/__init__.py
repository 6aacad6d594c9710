"""The dashboard: its page and JSON, the live feed, the relay of events across workers, the keys view."""
