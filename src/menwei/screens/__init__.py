"""The gate app's screens: thin views over the gate service (no SQL, HTTP or OpenCV here)."""
