"""report stage: report.html (self-contained, images embedded) and report.pdf.

Example:
    >>> from neurolesion.report import write_report
    >>> write_report("out/", summary, rows, case.images, labels, brain=brain)  # doctest: +SKIP
    PosixPath('out/report.html')
"""

from neurolesion.report.html import write_report

__all__ = ["write_report"]
