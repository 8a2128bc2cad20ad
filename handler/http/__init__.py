"""HTTP mode (WORKER_MODE=http): an ASGI adapter beside the RunPod handler, over the same services.

Routers (routes_seed, routes_openai) only parse and hand over; responses are built in the
serving layer (openai_serving) or by the actions themselves; errors are mapped by
handler/errors.py and given an HTTP status here (status.py).
"""
