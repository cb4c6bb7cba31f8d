"""Wire shapes of each client dialect (pure): error bodies, in-stream error events, ids."""
