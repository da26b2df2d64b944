"""The notifications domain: who hears of what, when, and how a message is signed and retried.

Pure Python: no FastAPI, no SQL, no network. Adapters send; the service layer wires.
"""
