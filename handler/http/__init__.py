"""HTTP mode (WORKER_MODE=http): an ASGI adapter beside the RunPod handler, over the same services.

Routers (routes_seed, routes_openai) only parse and hand over; responses are built in the
serving layer (handler/openai/) or by the actions themselves; errors are mapped by
handler/errors.py and given an HTTP status by handler/status.py.
"""
