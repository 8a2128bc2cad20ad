"""Library code of the chat worker: services (chat, enhance) and what they use."""
