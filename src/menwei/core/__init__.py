"""The domain core: passes, policy, roster, store, event log and the gate service.

Nothing in here imports the UI, the network or the camera.
"""
