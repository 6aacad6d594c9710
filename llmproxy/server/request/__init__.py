"""The request path: what every API request passes through, from the middleware (errors, auth,
the origin guard, client keys) to the handlers, the Exchange, dispatch and the one stream writer."""
