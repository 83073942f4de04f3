"""hizkit's builtin plugins, each registered through the same hooks a third party uses.

The registry imports the modules listed in ``hizkit.registry.BUILTIN_PLUGINS``; nothing in
``hizkit`` (the core) imports this package directly.
"""
