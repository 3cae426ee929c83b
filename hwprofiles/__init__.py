"""Built-in hardware profiles for snncost, one YAML file per target.

This package holds data, not code: ``snncost.hardware.load_profile("<name>")``
reads ``<name>.yaml`` from here through :mod:`importlib.resources`, and
``snncost.hardware.available_profiles()`` lists them. See ``README.md`` in this
directory for the file format and how to write your own profile.
"""
