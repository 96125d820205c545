"""menwei (门卫): household passes, staggered release and the gate log."""

__version__ = "0.1.0"
