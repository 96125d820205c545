from menwei.cli import cli

cli()
