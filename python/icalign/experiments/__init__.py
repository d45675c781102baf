"""The built-in experiments, one module per family; each module registers its
experiments on import (``icalign.registry.register``).

``icalign.registry.load_builtin_experiments()`` imports every module of this package,
so a new family is a new module here and needs no edit anywhere else. This package
imports nothing on its own.
"""
