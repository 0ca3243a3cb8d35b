"""The HTML report of an artifact (``snnc report``) and its matplotlib figures."""
