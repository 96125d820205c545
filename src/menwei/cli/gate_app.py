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
@click.option(
    "--sound/--no-sound",
    default=None,
    help="Sound cues and the spoken verdict (default: as gate-settings.json says, else on).",
)
@reports_errors
def gate(camera: str, lang: str, sound: bool | None) -> None:
    """Open the gate app: sign in, scan passes, see who is out, hand over the shift.

    One gate app per home: a second one is refused (it would end the first one's shift).
    Ctrl+Q quits (it asks whether to hand over first).
    """
    from dataclasses import replace

    from menwei.gateapp.app import make_app
    from menwei.gateapp.background import Background
    from menwei.gateapp.lock import HomeLock
    from menwei.gateapp.settings import load_settings
    from menwei.gateapp.sound import Sound

    home = get_home()
    with HomeLock(home):
        settings = load_settings(home)
        if sound is not None:
            settings = replace(settings, sound=sound, speech=sound)
        player = Sound(cues=settings.sound, speech=settings.speech)
        background = Background(home)
        app = make_app(
            home,
            camera=camera,
            lang=lang,
            sync_status=background.status,
            settings=settings,
            sound=player,
        )
        background.start()
        try:
            app.run()
        finally:
            background.stop()
            player.stop()
