"""The aiohttp server: app factory, middleware, thin handlers, dispatch."""
