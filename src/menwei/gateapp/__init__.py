"""The gate app, assembled in one place: `make_app` (app.py), the wiring of the gate service
(wiring.py), the camera and background threads, and the Textual-free state the screens render
(desk, session, keygate, feed, i18n). `menwei.screens` holds the Textual views only.

Nothing is imported here, so `menwei.gateapp.wiring` stays light for the CLI.
"""
