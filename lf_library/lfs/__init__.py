"""Ready-made LF modules, one per domain, loadable with ``load_registry(["lf_library.lfs.<domain>"])``.

- :mod:`lf_library.lfs.demo`: the synthetic support tickets of :mod:`jobs.demo.data`.
- :mod:`lf_library.lfs.youtube`: the UCI YouTube Spam Collection (column ``CONTENT``).

Each module defines ``LABEL_SPACE`` and its LFs as module attributes.
"""
