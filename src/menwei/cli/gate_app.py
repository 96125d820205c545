"""`menwei gate`: open the gate app on this home's community (also what `menwei` alone does)."""

from __future__ import annotations

import click

from menwei.cli.common import get_home, reports_errors


@click.command()
@click.option(
    "--camera",
    "camera",
    metavar="SRC",
    default="auto",
    show_default=True,
    help="Camera: a number (0), /dev/videoN, a video file, a folder of images, a stream URL, "
    "'demo' (simulated, shows the demo's printed passes), 'none', or 'auto' (the first camera "
    "if there is one). A USB scanner works whatever this says.",
)
@click.option(
    "--lang",
    type=click.Choice(["zh", "en"]),
    default="zh",
    show_default=True,
    help="Language of the screens (F10 switches while it runs).",
)
@reports_errors
def gate(camera: str, lang: str) -> None:
    """Open the gate app: sign in, scan passes, see who is out, hand over the shift."""
    from menwei.gateapp.app import make_app
    from menwei.gateapp.background import Background

    home = get_home()
    background = Background(home)
    app = make_app(home, camera=camera, lang=lang, sync_status=background.status)
    background.start()
    try:
        app.run()
    finally:
        background.stop()
