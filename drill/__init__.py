"""The zone drill's runner (`python -m drill`)."""
