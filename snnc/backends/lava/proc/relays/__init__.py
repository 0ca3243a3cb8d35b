"""Payload relays: partial-sum relay neurons and channel slices."""
