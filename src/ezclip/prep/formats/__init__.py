"""Converters from each dataset's official annotation release to the project's list format.

One parser module per format (``ucf101``, ``hmdb51``, ``kinetics``, ``ssv2``); each has
``convert(annotations, ...) -> Conversion``. The command line is in ``convert``:
``ezclip data convert <ucf101|hmdb51|k400|k600|ssv2> --annotations DIR --out DIR``.
"""
