"""The RunPod entry point: `python -m handler`."""
