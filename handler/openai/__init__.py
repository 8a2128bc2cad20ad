"""The OpenAI chat-completions serving layer, shared by both adapters: HTTP mode's /v1 routes
(handler/http/) and queue jobs carrying RunPod's OpenAI passthrough (handler/app.py).

protocol.py: wire schema -> chat service payload; serving.py: completions and SSE events,
built only here; jobs.py: the queue-job form ({"openai_route", "openai_input"}).
"""
