"""Jinja templates for gradgen's C backend, installed as the resource package ``gradgen.templates``.

A regular package (not a namespace one) so that importlib.resources and setuptools' editable
finder both resolve it from this top-level folder.
"""
