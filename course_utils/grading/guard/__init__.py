"""The folder put first on a sandbox child's ``PYTHONPATH``: its ``sitecustomize`` installs the access guard."""
