"""The book's own code: what its chapters need and a user interpreting their own classifier does not.

* :mod:`l2i.book.figures` -- the figures the chapters quote, checked against the ranges measured
  over seeds and machines and handed to the prose (myst-nb's ``glue``)
"""
