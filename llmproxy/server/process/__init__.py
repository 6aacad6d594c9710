"""The process: the app factory, serving (one process or workers), reloads, health, connection hygiene
and the background tasks that keep a fleet in touch."""
