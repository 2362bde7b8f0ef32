"""The framework behind every notebook, separate from the algorithms: configuration (``config``), a notebook's run
(``session``), pre-registered claims and their verdicts (``claims``, ``contract``), evidence and the derived status
(``evidence``), the batch runner (``runner``), run records (``record``), reports (``report``), the catalog
(``catalog``) and the ``optrepro`` command (``cli``)."""
