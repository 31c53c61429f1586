"""The HTTP edge: the FastAPI app, routers, problem+json, auth, ops endpoints, serving."""
