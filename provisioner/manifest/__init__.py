"""Manifest v1: YAML with positions -> schema check -> semantic checks -> typed desired state."""
